"""8-bit and 4-bit loading with bitsandbytes, and the CPU repacking trap.

What works where (bitsandbytes 0.50.2, measured on this project's CPU machine):
- GPU (CUDA): fp32, bf16, fp16, 8bit, 4bit, as in the reference (fp16 compute without bf16).
- CPU: 8bit and 4bit both load and run (slowly: no fast CPU kernels for training).

The trap: on a CPU with AVX512-BF16, the first inference through a 4-bit layer (eval mode,
no gradients) repacks its weights into a layout that only has a forward kernel. Training the same
model afterwards runs without error, but no gradient flows through the base layers, so the LoRA
weights get none. `keep_trainable_4bit` turns the repacking off and undoes any that happened.
"""

import os

from pricer.errors import PricerError

QUANTIZED = ("8bit", "4bit")


def bitsandbytes_problem(device: str) -> str | None:
    """Why 8-bit/4-bit cannot run on `device` here, or None when it can."""
    import torch

    try:
        import bitsandbytes as bnb
    except ImportError:
        return "bitsandbytes is not installed (pip install bitsandbytes==0.50.2)"
    kind = device.split(":")[0]
    if kind not in ("cpu", "cuda", "xpu"):
        return f"bitsandbytes {bnb.__version__} has no 8-bit/4-bit kernels for device '{kind}'"
    if kind == "cuda":
        from bitsandbytes.cextension import ErrorHandlerMockBNBNativeLibrary, lib

        if not torch.cuda.is_available():
            return "no CUDA GPU is visible"
        if isinstance(lib, ErrorHandlerMockBNBNativeLibrary):
            return "bitsandbytes could not load its CUDA library (check the CUDA version)"
    return None


def under_fsdp() -> bool:
    """True in a process that `accelerate launch` started with an FSDP config (it sets
    ACCELERATE_USE_FSDP; read before the model exists, so no process group is needed)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")


def quantization_config(precision: str, device: str):
    """The transformers `BitsAndBytesConfig` for "8bit" or "4bit" (NF4, double quant), computing
    in the dtype the precision rule gives (bf16 as the reference; fp16 on a GPU without bf16).

    Under FSDP (FSDP-QLoRA) the packed 4-bit weights are stored in the compute dtype rather than
    uint8: FSDP shards float tensors only, and wants one dtype per unit (the PEFT and
    bitsandbytes FSDP-QLoRA guides; the Trainer then sets FSDP's mixed precision to it)."""
    from transformers import BitsAndBytesConfig

    from pricer.models.precision import resolve_precision

    problem = bitsandbytes_problem(device)
    if problem:
        raise PricerError(f"{precision} needs bitsandbytes, but {problem}: use --precision fp32 or bf16")
    if precision == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = resolve_precision(precision, device).dtype
    storage = {"bnb_4bit_quant_storage": compute} if under_fsdp() else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, **storage)


def keep_trainable_4bit(model) -> int:
    """Switch off bitsandbytes' CPU repacking of 4-bit weights (and undo it where it already
    happened) so that LoRA on top still gets gradients. Returns how many layers were unpacked.

    bitsandbytes has no public switch: each `Linear4bit` checks its `support_avx512bf16_for_cpu`
    attribute before repacking, and ships the inverse conversion, which we apply.
    """
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse
    from bitsandbytes.nn import Linear4bit

    unpacked = 0
    for module in model.modules():
        if not isinstance(module, Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False
        state = module.weight.quant_state
        if getattr(state, "packing_format_for_cpu", False):
            module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                module.weight.data, state)
            unpacked += 1
    return unpacked
