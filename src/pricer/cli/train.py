"""`pricer train`: fine-tune a base model with LoRA / QLoRA so it completes "Price is $".

Every field of the run config (pricer.train.config.TrainConfig) is an option here, made from the
dataclass's fields and help texts (as HfArgumentParser does for TrainingArguments); a YAML file
(--config: a path or a shipped config's name) sets them first, options override it, and
`--set key=value` reaches any field too. The command checks, trains, evaluates, pushes; the work
is done by pricer.train.run.train and pricer.evaluate.run.evaluate_run.
"""

import dataclasses
import inspect
import sys
import time
import types
import typing
from pathlib import Path

import typer

from pricer.errors import PricerError

# option names that differ from the field's (one name per idea across commands; TRL's --lr alias)
NAMES = {"results_dir": ("--results",), "learning_rate": ("--learning-rate", "--lr"),
         "eval": ("--eval/--no-eval",), "group_by_length": ("--group-by-length/--no-group-by-length",),
         "data": ("--data", "-d"), "out": ("--out", "-o"), "model": ("--model", "-m"),
         "eval_data": ("--test", "--eval-data")}
TEXT = ("eval_size",)  # a number or "all"


def _option_type(kind) -> type:
    """The command-line type of a config field (a union or a list arrives as text)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if isinstance(kind, types.UnionType) and len(args) == 1:
        kind = args[0]
    return kind if kind in (int, float, bool, str) else str


def config_options() -> list[inspect.Parameter]:
    """One Typer option per TrainConfig field, with its help text and default shown."""
    from pricer.train.config import TrainConfig

    params = []
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = ",".join(default) if isinstance(default, list) else str(default)
        flag = f.name.replace("_", "-")
        names = NAMES.get(f.name, (f"--{flag}/--no-{flag}" if _option_type(f.type) is bool
                                   else f"--{flag}",))
        option = typer.Option(None, *names, help=f.metadata.get("help", ""),
                              show_default=False if default is None else shown)
        kind = str if f.name in TEXT else _option_type(f.type)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=kind))
    return params


def with_config_options(command):
    """`command(**options)` with the config fields added to its declared options."""
    own = list(inspect.signature(command).parameters.values())
    fixed = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own
             if p.kind != inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = inspect.Signature(fixed + config_options())
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
    return command


def overrides_of(options: dict, set_: list[str] | None) -> dict:
    """The config fields given on the command line (None: not given), --set pairs last."""
    from pricer.train.config import FIELDS

    values = {k: v for k, v in options.items() if k in FIELDS}
    for pair in set_ or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise PricerError(f"--set {pair}: expected key=value")
        values[key.strip()] = value.strip()
    return values


def print_config(config) -> None:
    """The resolved config as YAML: plain text when redirected (clean YAML in a file)."""
    text = config.to_yaml()
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(text, "yaml"))
    else:
        sys.stdout.write(text)


def progress_bar(console=None):
    """A Rich bar for the HF Trainer as a TrainerCallback (transformers is imported only here,
    so that `pricer --help` stays instant)."""
    from transformers import TrainerCallback

    class RichProgress(_Bar, TrainerCallback):
        pass

    return RichProgress(console)


class _Bar:
    """Step, loss and real (non-padding) tokens/s, on the main process."""

    def __init__(self, console=None):
        self.console = console
        self.progress = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen
        if state.is_world_process_zero:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                TextColumn("[bold blue]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss [yellow]{task.fields[loss]}"),
                TextColumn("[green]{task.fields[tps]} tok/s"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
            self.task = self.progress.add_task("train", total=state.max_steps,
                                               completed=state.global_step, loss="-", tps="-")
            self.progress.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            elapsed = time.perf_counter() - self.start
            tps = (state.num_input_tokens_seen - self.tokens0) / elapsed if elapsed > 0 else 0
            self.progress.update(self.task, completed=state.global_step, tps=f"{tps:.0f}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"{logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def run_and_evaluate(config, resume: bool = False, overwrite: bool = False, console=None,
                     by: str = "pricer train", eval_items=None) -> Path:
    """Check the evaluation can run, train, then evaluate (or say why not) and push."""
    from rich.console import Console

    from pricer.evaluate.run import eval_items as find_eval_items
    from pricer.evaluate.run import evaluate_run
    from pricer.train.run import push, train
    from pricer.models.run import CARD_MD

    console = console or Console()
    source = items = None
    if config.eval:  # before the first step: bad or missing evaluation data fails now
        source, items = eval_items if eval_items else find_eval_items(config.data, config.eval_data)

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    out = train(config, resume=resume, overwrite=overwrite, say=say,
                callbacks=[progress_bar(console)])
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return out
    if not config.eval:
        console.print("evaluation after training: skipped (--no-eval)")
    elif items is None:
        evaluate_run(out, by=by, show=False)  # records why in the run card
        console.print("evaluation after training: skipped (the data is a plain file with no "
                      "test split; give --eval-data FILE)")
    else:
        from pricer.train.config import resolve

        console.rule(f"evaluation after training: {resolve(config).eval_predictor} on {source}")
        result = evaluate_run(out, items, eval_data=source, by=by, console=console)
        console.print(f"evaluation after training: done, error ${result['error']:,.2f}, RMSLE "
                      f"{result['rmsle']:.3f}, hits {result['hits']:.1f}%; in {out}/{CARD_MD}")
    if config.push_to_hub:
        push(out, config.push_to_hub)
    return out


@with_config_options
def train(
    config: str = typer.Option(None, "--config", "-c", help="YAML run config: a path, or a shipped one by name (reference, demo, amazon)."),
    set_: list[str] = typer.Option(None, "--set", help="Any config field: --set key=value (repeatable; after the options)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest complete checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a pricer run already in --out (never anything else)."),
    print_config_: bool = typer.Option(False, "--print-config", help="Print the resolved config (YAML) and exit."),
    **options,
) -> None:
    """Fine-tune a base model with LoRA / QLoRA (TRL SFTTrainer, loss on the price only), then
    evaluate it on the test split."""
    from pricer.train.config import load_config, resolve
    from pricer.train.run import check_out

    run_config = load_config(config, overrides_of(options, set_))
    if print_config_:
        print_config(resolve(run_config))
        return
    check_out(Path(run_config.out), resume, overwrite)
    run_and_evaluate(run_config, resume=resume, overwrite=overwrite)
