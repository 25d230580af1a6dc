"""Resolve and load a base model (and optionally a LoRA adapter) at a chosen precision.

A model is "default" (the offline SmolLM2-135M, see `default.py`), a local folder, or a Hub id.
Precision: fp32, bf16, 8bit, 4bit (NF4, double quantisation, bf16 compute), or auto.
"""

from pathlib import Path

from pricer.errors import PricerError
from pricer.models.default import DEFAULT_MODEL, default_model_dir

PRECISIONS = ("auto", "fp32", "bf16", "8bit", "4bit")


def resolve_model(model: str) -> str:
    """A path or Hub id that `from_pretrained` understands."""
    if model == DEFAULT_MODEL:
        return str(default_model_dir())
    return model


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model: str, adapter: str | None = None, precision: str = "auto",
               device: str | None = None):
    """(model, tokenizer), in eval mode, with the adapter attached when given."""
    import torch
    from transformers import AutoModelForCausalLM

    if precision not in PRECISIONS:
        raise PricerError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    device = pick_device(device)
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    kwargs: dict = {}
    if precision in ("8bit", "4bit"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True) if precision == "8bit" else
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16))
        kwargs["device_map"] = {"": device}
    else:
        kwargs["dtype"] = torch.float32 if precision == "fp32" else torch.bfloat16
    path = resolve_model(model)
    loaded = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if precision not in ("8bit", "4bit"):
        loaded.to(device)
    if adapter:
        from peft import PeftModel

        if not Path(adapter).exists() and "/" not in adapter:
            raise PricerError(f"{adapter}: no such adapter folder")
        loaded = PeftModel.from_pretrained(loaded, adapter)
    loaded.eval()
    return loaded, load_tokenizer(model)
