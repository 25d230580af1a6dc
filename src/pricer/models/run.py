"""A run folder and its one owner, `Run` (as a Trainer's output_dir, or an MLflow run).

What `pricer train` writes, and every other command reads, is spelled here and nowhere else:

    train_config.yaml        the settings it was trained with (`config()`)
    data_fingerprint.json    the items it read (`data()`): fingerprint, counts
    run_card.json / .md      what it is, how long it took, how good it is (`card()`)
    adapter_config.json +    the LoRA adapter (PEFT's files)
    adapter_model.safetensors
    head_config.json +       the regression head, for a run trained with --head regression
    head.safetensors
    checkpoint-N/            the Trainer's checkpoints (`checkpoints()`)

`Run(folder).holds()` says which predictor reads it: "head" (a regression head beside the
adapter), "adapter" (a LoRA adapter that writes the price: greedy, topk, expected), or None.
`Run.differences(saved, now)` decides what "the same run" means for a resumption.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pricer.errors import PricerError, reading, writing

CONFIG = "train_config.yaml"
DATA = "data_fingerprint.json"
CARD = "run_card.json"
CARD_MD = "run_card.md"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "head.safetensors"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")

# settings that may change between an interrupted run and its resumption
RESUMABLE = ("out", "max_minutes", "eval", "eval_data", "eval_size", "eval_predictor", "results_dir",
             "report_to", "push_to_hub", "logging_steps", "threads", "frozen_cache")
# settings a resumption may raise, as the Trainer allows: the run goes on over the same items
EXTENDABLE = ("max_steps", "epochs")
PATHS = ("model", "data", "prices_like", "init_from")  # the same file however it is spelled


class Run:
    """The run in `folder` (a checkpoint-N folder reads its run's settings)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    @property
    def name(self) -> str:
        return self.folder.name

    def path(self, name: str) -> Path:
        return self.folder / name

    # ---- what it holds ----------------------------------------------------------------

    def exists(self) -> bool:
        """pricer wrote a run here (the only kind of folder --overwrite may replace)."""
        return self.path(CONFIG).is_file() or self.path(CARD).is_file()

    def is_finished(self) -> bool:
        return self.path(CARD).is_file()

    def has_adapter(self) -> bool:
        return self.path(ADAPTER_CONFIG).is_file()

    def is_head(self) -> bool:
        """Trained with --head regression: its price comes from the head beside the adapter."""
        return self.path(HEAD_CONFIG).is_file()

    def holds(self) -> str | None:
        """"head", "adapter" or None: what a predictor can read here."""
        if self.is_head():
            return "head"
        return "adapter" if self.has_adapter() else None

    def refuse_head(self, predictor: str) -> None:
        """A head run is read by the head predictor only: a predictor that generates text would
        read a price from LoRA weights that were never trained to write one."""
        if self.is_head():
            raise PricerError(f"{self.folder}: a run trained with --head regression: read it with "
                              f"--predictor head ({predictor} would generate a price from LoRA "
                              "weights never trained to write one)")

    # ---- settings and data -------------------------------------------------------------

    def _settings_file(self) -> Path:
        path = self.path(CONFIG)
        if not path.is_file() and CHECKPOINT.match(self.folder.name):
            return self.folder.parent / CONFIG  # a checkpoint: its run's settings
        return path

    def config(self) -> dict:
        """The settings it was trained with ({} when it has none: an adapter from elsewhere)."""
        import yaml

        path = self._settings_file()
        if not path.is_file():
            return {}
        with reading(path):
            saved = yaml.safe_load(path.read_text()) or {}
        return saved if isinstance(saved, dict) else {}

    def need_config(self) -> dict:
        if not self.path(CONFIG).is_file():
            raise PricerError(f"{self.folder}: no {CONFIG}, so not a pricer training run")
        return self.config()

    @property
    def prompt_format(self) -> str | None:
        """The prompt format it was trained with (None: not recorded; the caller's default)."""
        return self.config().get("prompt_format")

    def data(self) -> dict:
        """The record of the items it read ({} when absent)."""
        if not self.path(DATA).is_file():
            return {}
        with reading(self.path(DATA)):
            return json.loads(self.path(DATA).read_text())

    def start(self, config_yaml: str, data: dict) -> None:
        """Write the settings and the data record (before training; the folder is made)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with writing(self.path(CONFIG)):
            self.path(CONFIG).write_text(config_yaml)
            self.path(DATA).write_text(json.dumps(data))

    @staticmethod
    def differences(saved: dict, now: dict) -> list[str]:
        """The settings of `now` that make it another run than `saved`, each named once: paths
        are compared resolved, max_steps and epochs may be raised, RESUMABLE ones may change."""
        return [k for k in now if k not in RESUMABLE and not _same(k, saved.get(k), now[k])]

    # ---- checkpoints -------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        """checkpoint-N folders, newest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m[1]), p) for p in self.folder.iterdir()
                 if p.is_dir() and (m := CHECKPOINT.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def complete_checkpoints(self) -> list[Path]:
        """Checkpoints written to the end (a kill during a save leaves one without its trainer
        state, weights or optimiser), newest first."""
        need = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
        return [p for p in self.checkpoints()
                if all((p / name).is_file() for name in need)
                and any((p / w).is_file() for w in (ADAPTER_WEIGHTS, "model.safetensors"))]

    def adapter_weights(self) -> Path:
        path = self.path(ADAPTER_WEIGHTS)
        if not path.is_file():
            raise PricerError(f"{self.folder}: no {ADAPTER_WEIGHTS} to start from")
        return path

    # ---- the run card ------------------------------------------------------------------

    def card(self) -> dict:
        if not self.path(CARD).is_file():
            raise PricerError(f"{self.folder}: no {CARD}, so not a finished pricer run")
        with reading(self.path(CARD)):
            return json.loads(self.path(CARD).read_text())

    def card_or_empty(self) -> dict:
        return self.card() if self.path(CARD).is_file() else {}

    def write_card(self, card: dict) -> None:
        """`run_card.json` (everything) and `run_card.md` (the same for people)."""
        with writing(self.path(CARD)):
            self.path(CARD).write_text(json.dumps(card, indent=2, default=str))
            self.path(CARD_MD).write_text(card_markdown(self.name, card))

    def record_evaluation(self, evaluation: dict | None, eval_data: str | None, by: str,
                          note: str | None = None) -> dict:
        """Put the evaluation `by` a command ("pricer train", "pricer demo") into the card, or
        the `note` saying why there is none."""
        card = self.card()
        if evaluation is None:
            card["eval_note"] = note
        else:
            card.update(evaluation=evaluation, eval_data=str(eval_data), evaluated_by=by)
            card.pop("eval_note", None)
        self.write_card(card)
        return card

    def summary(self) -> dict:
        """One row of `pricer runs`: name, base model, data, steps, best score."""
        card, config = self.card_or_empty(), self.config()
        ev = card.get("evaluation") or {}
        return {"name": self.name, "path": str(self.folder), "holds": self.holds(),
                "base_model": card.get("base_model", config.get("model")),
                "data": card.get("data", config.get("data")), "steps": card.get("steps"),
                "error": ev.get("error"), "rmsle": ev.get("rmsle"), "n": ev.get("n"),
                "finished": self.is_finished()}


def find_runs(root: str | Path) -> list[Run]:
    """The runs under `root` (itself, or its subfolders at any depth), checkpoints left out."""
    root = Path(root)
    if not root.is_dir():
        raise PricerError(f"{root}: no such folder")
    found = {p.parent for name in (CONFIG, CARD) for p in root.rglob(name)}
    return [Run(p) for p in sorted(found) if not any(CHECKPOINT.match(x) for x in p.parts)]


def _same(key: str, saved, now) -> bool:
    if key in EXTENDABLE:  # more steps or epochs extend the run; fewer, or steps for epochs, do not
        return now == saved or (key == "epochs" or saved > 0) and now > saved
    if key in PATHS and saved is not None and now is not None:
        return Path(str(saved)).expanduser().resolve() == Path(str(now)).expanduser().resolve()
    return saved == now


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


def card_markdown(name: str, card: dict) -> str:
    ev = card.get("evaluation") or {}
    lora = card.get("lora_parameters")
    lines = [
        f"# Run card: {name}",
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
    lines += ["", f"Settings: `{CONFIG}`. Adapter: this folder "
              f"(`{ADAPTER_CONFIG}` + `{ADAPTER_WEIGHTS}`).", ""]
    return "\n".join(lines)
