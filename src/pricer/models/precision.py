"""The one rule for precision and device: every loader, predictor and trainer asks here.

Precision names: fp32, bf16 (weights), 8bit, 4bit (bitsandbytes; NF4 with double quantisation
and bf16 compute), or auto:
- for inference, auto = bf16 where the device computes bf16 fast (a CUDA GPU with bf16, a CPU
  with AVX512-BF16 or AMX), else fp32;
- for training, auto = 4bit on a GPU (QLoRA, as the reference) and fp32 LoRA on a CPU, with
  bf16 autocast (mixed precision) where the device computes bf16 fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pricer.errors import PricerError

PRECISIONS = ("auto", "fp32", "bf16", "8bit", "4bit")
QUANTIZED = ("8bit", "4bit")
PURPOSES = ("inference", "training")


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16, 8bit or 4bit: never "auto"
    device: str  # cpu, cuda, cuda:1, mps
    autocast_bf16: bool  # training: bf16 mixed precision on top of the weights

    @property
    def quantized(self) -> bool:
        return self.name in QUANTIZED

    @property
    def dtype(self):
        """Dtype of the layers that are not quantised (bf16 beside 4/8-bit, as the reference)."""
        import torch

        return torch.float32 if self.name == "fp32" else torch.bfloat16


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

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return device == "cpu" and cpu_has_fast_bf16()


def resolve_precision(precision: str = "auto", device: str | None = None,
                      purpose: str = "inference", mixed_bf16: str | bool = "auto") -> Precision:
    """Settle `precision` (and, for training, bf16 autocast) for `device`; see the module doc."""
    if precision not in PRECISIONS:
        raise PricerError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    device = pick_device(device)
    gpu = device.startswith("cuda")
    if precision == "auto":
        if purpose == "training":
            precision = "4bit" if gpu else "fp32"
        else:
            precision = "bf16" if fast_bf16(device) else "fp32"
    autocast = False
    if purpose == "training":
        if mixed_bf16 == "auto":  # mixed precision where bf16 is fast, over fp32 or k-bit weights
            autocast = fast_bf16(device) and (gpu or precision == "fp32")
        else:
            autocast = bool(mixed_bf16)
    return Precision(precision, device, autocast)


def precision_of(model) -> str:
    """The precision a loaded model has, read from what transformers keeps on it."""
    import torch

    if getattr(model, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(model, "is_loaded_in_8bit", False):
        return "8bit"
    return "fp32" if model.dtype == torch.float32 else "bf16"
