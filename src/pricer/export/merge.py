"""Fold a LoRA adapter into its base model and save one plain transformers folder.

The merge is computed in fp32 (base loaded in fp32, `merge_and_unload`), then cast to the
output dtype, so the only rounding is the final cast. An adapter trained on a 4-bit (or 8-bit)
base is merged into the 16-bit base: its weights were learnt against the quantised ones, so the
merged model's answers can drift a little from the adapter's as it was trained (`caveat`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pricer.errors import PricerError

DTYPES = ("bf16", "fp16", "fp32")
QUANTIZED_CAVEAT = ("the adapter was trained on a {precision} base and is merged into the 16-bit "
                    "base weights: prices can differ slightly from the adapter on the {precision} "
                    "model (check with `pricer eval --model OUT`)")


@dataclass
class Merged:
    """A merged model in memory, with what the model card and the exporters need to know."""

    model: object
    tokenizer: object
    base: str
    adapter: str | None
    dtype: str
    run_card: dict = field(default_factory=dict)  # the adapter's run_card.json, when present
    caveat: str | None = None


def torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise PricerError(f"unknown dtype '{name}' (choose from {', '.join(DTYPES)})")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def read_run_card(adapter: str | None) -> dict:
    """The adapter's run card (what `pricer train` wrote), or {}."""
    from pricer.models.run import Run

    return Run(adapter).card_or_empty() if adapter else {}


def trained_precision(run_card: dict) -> str | None:
    """The base precision the adapter was trained at, from its run card (None if unknown)."""
    return (run_card.get("config") or {}).get("precision")


def merge(model: str, adapter: str | None = None, dtype: str = "bf16") -> Merged:
    """Base `model` ('default', a folder or a Hub id) with `adapter` folded in, on the CPU,
    cast to `dtype`. Without an adapter the base itself is converted."""
    from pricer.models.load import load_model

    target = torch_dtype(dtype)
    loaded, tokenizer = load_model(model, adapter=adapter, precision="fp32", device="cpu")
    if adapter:
        loaded = loaded.merge_and_unload()
    loaded = loaded.to(target).eval()
    card = read_run_card(adapter)
    precision = trained_precision(card)
    caveat = QUANTIZED_CAVEAT.format(precision=precision) if precision in ("4bit", "8bit") else None
    return Merged(loaded, tokenizer, base=model, adapter=adapter, dtype=dtype, run_card=card,
                  caveat=caveat)


def save(merged: Merged, out: Path) -> Path:
    """`out`/ model.safetensors + config.json + generation_config.json + tokenizer files."""
    out.mkdir(parents=True, exist_ok=True)
    merged.model.config.dtype = torch_dtype(merged.dtype)
    merged.model.save_pretrained(out, safe_serialization=True)
    merged.tokenizer.save_pretrained(out)
    return out
