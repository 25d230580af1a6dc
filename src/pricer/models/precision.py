"""The one rule for precision and device: every loader, predictor and trainer asks here.

Precision names: fp32, bf16, fp16 (weights), 8bit, 4bit (bitsandbytes; NF4 with double
quantisation), checked (inference that decides by argmax: bf16 compute, every decision closer
than a margin recomputed in fp32, so the answers are fp32's), or auto. The rule settles three
things:
- the weights: for inference, auto = the device's half type (below), else fp32; where the caller
  decides by argmax (greedy) and the device is a CPU with fast bf16, auto = checked: plain bf16
  changes greedy answers there (docs/predict.md); for training, auto = 4bit on a GPU (QLoRA, as
  the reference) and fp32 LoRA on a CPU;
- the compute dtype: the weights' own type, or beside 8/4-bit (the layers left unquantised, the
  4-bit matmuls) the device's half type, bf16 on a CPU (as the reference);
- for training, mixed precision (autocast; fp16 with loss scaling) on top: on a GPU the weights'
  own type where they are bf16 or fp16, else the device's half type; on a CPU, bf16 over fp32
  weights only, where bf16 is fast.
The device's half type: bf16 where it computes bf16 natively and fast (a CUDA GPU of compute
capability >= 8.0, a CPU with AVX512-BF16 or AMX); fp16 on a CUDA GPU without (T4, V100: bf16 is
only emulated there); none (fp32) on other CPUs and devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pricer.errors import PricerError

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "8bit", "4bit", "checked")
FLOATS = ("fp32", "bf16", "fp16")
QUANTIZED = ("8bit", "4bit")
PURPOSES = ("inference", "training")


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16, fp16, 8bit, 4bit or checked: never "auto"
    device: str  # cpu, cuda, cuda:1, mps
    compute: str  # fp32, bf16 or fp16: the weights' type; beside 8/4-bit, the unquantised layers'
    mixed: str | None = None  # training: "bf16" or "fp16" (loss-scaled) mixed precision, or None
    check: str | None = None  # checked: the type close decisions are recomputed in ("fp32")

    @property
    def quantized(self) -> bool:
        return self.name in QUANTIZED

    @property
    def dtype(self):
        """The torch dtype of `compute`: the weights', or the unquantised layers' and the 4-bit
        compute dtype beside 4/8-bit."""
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.compute]


def pick_device(device: str | None = None) -> str:
    """`device` checked to exist here, else cuda when a GPU is visible, else cpu."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise PricerError(f"unknown device '{device}' (try cpu, cuda, cuda:1, mps)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}.get(kind, False)
    if not available:
        raise PricerError(f"device '{device}' is not available on this machine (try cpu)")
    return device


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX in /proc/cpuinfo (Linux; elsewhere False: fp32 is the safe choice)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_bf16(device: str) -> bool:
    """True where bf16 matmuls run at least as fast as fp32 on `device`."""
    import torch

    if device.startswith("cuda"):  # natively: a T4 also "supports" bf16, emulated and slow
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device == "cpu" and cpu_has_fast_bf16()


def half_type(device: str) -> str | None:
    """The 16-bit float `device` computes fast: bf16 where `fast_bf16`, else fp16 on a CUDA GPU
    (T4, V100), else None (fp32 is the fast type there)."""
    if fast_bf16(device):
        return "bf16"
    return "fp16" if device.startswith("cuda") else None


def resolve_precision(precision: str = "auto", device: str | None = None,
                      purpose: str = "inference", mixed_bf16: str | bool = "auto",
                      mixed_fp16: str | bool = "auto", checkable: bool = False) -> Precision:
    """Settle `precision`, its compute dtype and, for training, its mixed precision (`mixed_bf16`
    and `mixed_fp16`: auto, True or False each) for `device`; see the module doc. `checkable`:
    the caller decides by argmax and can recompute close decisions (greedy), so "checked" is
    open to it; elsewhere "checked" means fp32, the answers it stands for."""
    if precision not in PRECISIONS:
        raise PricerError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    if precision == "checked" and purpose == "training":
        raise PricerError("precision 'checked' is for greedy inference; train in fp32, bf16 or 4bit")
    device = pick_device(device)
    half = half_type(device)
    if precision == "auto" and checkable and device == "cpu" and half == "bf16":
        precision = "checked"
    if precision == "checked":
        return Precision("checked", device, "bf16", check="fp32") if checkable \
            else Precision("fp32", device, "fp32")
    if precision == "auto":
        if purpose == "training":
            precision = "4bit" if device.startswith("cuda") else "fp32"
        else:
            precision = half or "fp32"
    compute = precision if precision in FLOATS else half or "bf16"
    mixed = mixed_precision(precision, device, half, mixed_bf16, mixed_fp16) \
        if purpose == "training" else None
    return Precision(precision, device, compute, mixed)


def mixed_precision(precision: str, device: str, half: str | None, bf16: str | bool = "auto",
                    fp16: str | bool = "auto") -> str | None:
    """Training's mixed precision over `precision` weights: "bf16", "fp16" or None."""
    if bf16 is True and fp16 is True:
        raise PricerError("bf16 and fp16 mixed precision: choose one")
    if bf16 is True or fp16 is True:
        chosen = "bf16" if bf16 is True else "fp16"
    elif device.startswith("cuda"):  # the weights' own half type, else the GPU's
        chosen = precision if precision in ("bf16", "fp16") else half
    else:  # a CPU: bf16 autocast over fp32 weights, where bf16 is fast
        chosen = half if precision == "fp32" else None
    if (chosen == "bf16" and bf16 is False) or (chosen == "fp16" and fp16 is False):
        return None
    if chosen == "fp16" and device == "cpu":  # accelerate runs fp16 autocast on GPUs only
        raise PricerError("fp16 mixed precision needs a GPU; on a CPU use bf16 or none")
    return chosen


def precision_of(model) -> str:
    """The precision a loaded model has, read from what transformers keeps on it."""
    import torch

    if getattr(model, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(model, "is_loaded_in_8bit", False):
        return "8bit"
    return {torch.float32: "fp32", torch.float16: "fp16"}.get(model.dtype, "bf16")
