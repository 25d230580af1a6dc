"""The run card: a short Markdown + JSON record of a finished run (what, on what, how long, how
good, and who evaluated it)."""

import json
from pathlib import Path

from pricer.errors import PricerError, reading, writing

CARD = "run_card.json"


def read_run_card(out: Path) -> dict:
    out = Path(out)
    if not (out / CARD).is_file():
        raise PricerError(f"{out}: no {CARD}, so not a finished pricer run")
    with reading(out / CARD):
        return json.loads((out / CARD).read_text())


def record_evaluation(out: Path, evaluation: dict, eval_data: str, by: str) -> dict:
    """Put the evaluation `by` a command ("pricer train", "pricer demo") into the run card."""
    card = read_run_card(out)
    card.update(evaluation=evaluation, eval_data=str(eval_data), evaluated_by=by)
    card.pop("eval_note", None)
    write_run_card(out, card)
    return card


def write_run_card(out: Path, card: dict) -> None:
    """`run_card.json` (everything) and `run_card.md` (the same for people)."""
    out = Path(out)
    ev = card.get("evaluation") or {}
    lora = card.get("lora_parameters")
    lines = [
        f"# Run card: {out.name}",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{card['base_model']}` |",
        f"| data | `{card['data']}` (fingerprint `{card['data_fingerprint']}`) |",
        f"| items | {card['items']} ({card['truncated']} shortened to fit, "
        f"{card['skipped']} skipped without a price) |",
    ]
    if lora:
        lines.append(f"| LoRA parameters | {lora:,d} of {card['all_parameters']:,d} "
                     f"({100 * lora / card['all_parameters']:.2f}%) |")
    lines += [
        f"| steps | {card['steps']} (epochs {card['epochs']:.2f})"
        f"{', stopped by the time budget' if card.get('stopped_by_time_budget') else ''} |",
        f"| time | {card['train_seconds']:.0f} s, {card['tokens_per_s']:.0f} tokens/s |",
        f"| final loss | {card['final_loss']} |",
        f"| device | {card['device']} x {card['processes']} process(es) |",
    ]
    if "compute_dtype" in card:  # runs trained before the card recorded it have no row
        lines.append(f"| precision | {precision_note(card)} |")
    if ev:
        lines.append(f"| evaluation | {ev.get('predictor')} on {ev.get('n')} items of "
                     f"`{card.get('eval_data')}`: error ${ev['error']:.2f}, "
                     f"RMSLE {ev['rmsle']:.3f}, hits {ev['hits']:.1f}% "
                     f"(by `{card.get('evaluated_by', 'pricer train')}`) |")
    else:
        lines.append(f"| evaluation | {card.get('eval_note', 'not run')} |")
    lines += ["", "Settings: `train_config.yaml`. Adapter: this folder "
              "(`adapter_config.json` + `adapter_model.safetensors`).", ""]
    with writing(out / CARD):
        (out / CARD).write_text(json.dumps(card, indent=2, default=str))
        (out / "run_card.md").write_text("\n".join(lines))


def precision_fields(settled) -> dict:
    """The run card's record of a settled `pricer.models.precision.Precision`."""
    return {"precision": settled.name, "compute_dtype": settled.compute,
            "mixed_precision": settled.mixed or "no"}


def precision_note(card: dict) -> str:
    """How the run computed, e.g. "4bit weights, fp16 compute, mixed precision fp16 (loss scaling)"."""
    mixed = card.get("mixed_precision", "no")
    mixed = {"no": "no mixed precision", "fp16": "mixed precision fp16 (loss scaling)"}.get(
        mixed, f"mixed precision {mixed}")
    return f"{card['precision']} weights, {card['compute_dtype']} compute, {mixed}"
