"""The run card: a short Markdown + JSON record of a finished run (what, on what, how long, how good)."""

import json
from pathlib import Path


def write_run_card(out: Path, card: dict) -> None:
    """`run_card.json` (everything) and `run_card.md` (the same for people)."""
    (out / "run_card.json").write_text(json.dumps(card, indent=2, default=str))
    ev = card.get("evaluation") or {}
    lines = [
        f"# Run card: {out.name}",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{card['base_model']}` |",
        f"| data | `{card['data']}` (fingerprint `{card['data_fingerprint']}`) |",
        f"| items | {card['items']} ({card['truncated']} shortened to fit, "
        f"{card['skipped']} skipped without a price) |",
        f"| steps | {card['steps']} (epochs {card['epochs']:.2f})"
        f"{', stopped by the time budget' if card.get('stopped_by_time_budget') else ''} |",
        f"| time | {card['train_seconds']:.0f} s, {card['tokens_per_s']:.0f} tokens/s |",
        f"| final loss | {card['final_loss']} |",
        f"| device | {card['device']} x {card['processes']} process(es) |",
    ]
    if ev:
        lines.append(f"| evaluation | {ev.get('predictor')} on {ev.get('n')} items of "
                     f"`{card.get('eval_data')}`: error ${ev['error']:.2f}, "
                     f"RMSLE {ev['rmsle']:.3f}, hits {ev['hits']:.1f}% |")
    else:
        lines.append(f"| evaluation | {card.get('eval_note', 'not run')} |")
    lines += ["", "Settings: `train_config.yaml`. Adapter: this folder "
              "(`adapter_config.json` + `adapter_model.safetensors`).", ""]
    (out / "run_card.md").write_text("\n".join(lines))
