"""`pricer train` (issue 5): fine-tune a base model with LoRA / QLoRA so it completes "Price is $".

Every field of the run config (pricer.train.config.TrainConfig) can be set in a YAML file
(--config) and overridden here; `--set key=value` reaches the fields without their own option.
"""

from pathlib import Path

import typer

from pricer.errors import PricerError


def train(
    config: Path = typer.Option(None, "--config", "-c", help="YAML run config (see configs/)."),
    model: str = typer.Option(None, help="Base model: 'default', a folder or a Hub id."),
    data: str = typer.Option(None, help="Saved data set folder (train split) or .jsonl/.csv/.parquet with text and price."),
    out: str = typer.Option(None, help="Output folder: checkpoints, adapter, run card."),
    max_steps: int = typer.Option(None, help="Stop after N optimiser steps (default: whole epochs)."),
    max_items: int = typer.Option(None, help="Train on the first N items only."),
    epochs: float = typer.Option(None, help="Epochs (reference: 1)."),
    batch_size: int = typer.Option(None, help="Per-device batch size (reference: 4)."),
    learning_rate: float = typer.Option(None, "--lr", help="Peak learning rate (reference: 1e-4)."),
    lora_r: int = typer.Option(None, help="LoRA rank (reference: 32)."),
    precision: str = typer.Option(None, help="auto | fp32 | bf16 | 4bit | 8bit (auto: 4bit on GPU, fp32 on CPU)."),
    report_to: str = typer.Option(None, help="tensorboard | wandb | none."),
    push_to_hub: str = typer.Option(None, "--push-to-hub", help="Hub repo id to upload the adapter to (online)."),
    eval_data: str = typer.Option(None, help="Items to evaluate on after training (default: the data set's test split)."),
    eval_size: int = typer.Option(None, help="Evaluate on the first N test items (default 250)."),
    no_eval: bool = typer.Option(False, "--no-eval", help="Skip the evaluation after training."),
    set_: list[str] = typer.Option(None, "--set", help="Any other config field: --set key=value (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    print_config: bool = typer.Option(False, "--print-config", help="Show the resolved config (YAML) and exit."),
) -> None:
    """Fine-tune a base model with LoRA / QLoRA (TRL SFTTrainer, loss on the price only)."""
    from pricer.train.config import load_config

    overrides = dict(model=model, data=data, out=out, max_steps=max_steps, max_items=max_items,
                     epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                     lora_r=lora_r, precision=precision, report_to=report_to,
                     push_to_hub=push_to_hub, eval_data=eval_data, eval_size=eval_size,
                     eval=False if no_eval else None)
    for pair in set_ or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise PricerError(f"--set {pair}: expected key=value")
        overrides[key.strip()] = value.strip()
    run_config = load_config(config, overrides)
    if resume and overwrite:
        raise PricerError("choose one of --resume and --overwrite")
    if print_config:
        from rich.console import Console
        from rich.syntax import Syntax

        from pricer.models.load import pick_device
        from pricer.train.config import resolve

        resolved = resolve(run_config, pick_device())
        Console().print(Syntax(resolved.to_yaml(), "yaml"))
        return
    from pricer.train.run import train as run_training

    run_training(run_config, resume=resume, overwrite=overwrite)
