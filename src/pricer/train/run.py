"""One training run, start to finish: data -> LoRA/QLoRA with TRL's SFTTrainer -> adapter,
run card and evaluation in `config.out`.

`train(config)` is all a caller needs (the CLI and `pricer demo` use it). The same code runs on a
CPU, on a GPU, and data-parallel under `accelerate launch` (the HF Trainer reads the launcher's
environment; only the main process writes the run card and evaluates).
"""

import importlib.util
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from pricer.errors import PricerError
from pricer.train.config import TrainConfig, resolve

CONFIG_FILE = "train_config.yaml"
FINGERPRINT_FILE = "data_fingerprint.json"
# fields that may change between an interrupted run and its resumption
RESUMABLE = ("out", "max_minutes", "eval", "eval_data", "eval_size", "eval_predictor", "results_dir",
             "report_to", "push_to_hub", "logging_steps", "threads")


def _same_run(saved: dict, config: TrainConfig) -> list[str]:
    """Names of the settings that differ between the run saved in --out and this one."""
    now = config.to_dict()
    return [k for k in now if k not in RESUMABLE and saved.get(k) != now[k]]


def check_out(config: TrainConfig, fingerprint: str, resume: bool, overwrite: bool) -> str | None:
    """Decide what to do with --out; return the checkpoint to resume from (or None)."""
    import yaml
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.out)
    if not out.exists() or not any(out.iterdir()):
        if resume:
            raise PricerError(f"{out}: nothing to resume (no run there yet)")
        return None
    if overwrite:
        return None
    saved_file = out / CONFIG_FILE
    if not saved_file.exists():
        raise PricerError(f"{out} is not empty and holds no pricer run; choose another --out "
                          "or pass --overwrite")
    if not resume:
        raise PricerError(f"{out} already holds a run; pass --resume to continue it or "
                          "--overwrite to replace it")
    saved = yaml.safe_load(saved_file.read_text())
    differ = _same_run(saved, config)
    saved_print = json.loads((out / FINGERPRINT_FILE).read_text()).get("fingerprint") \
        if (out / FINGERPRINT_FILE).exists() else None
    if saved_print != fingerprint:
        differ.append("data")
    if differ:
        raise PricerError(f"{out} holds a different run ({', '.join(differ)} differ); "
                          "use another --out or --overwrite")
    last = get_last_checkpoint(str(out))
    if last is None:
        raise PricerError(f"{out}: no checkpoint to resume from (it is saved every "
                          f"{config.save_steps} steps)")
    return last


def sft_config(config: TrainConfig, **extra):
    """The TRL SFTConfig of a resolved run config (shared with the benchmarks)."""
    import torch
    from trl import SFTConfig

    kwargs = dict(
        output_dir=config.out,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float < 1 is a ratio of all steps
        optim=config.optim,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        bf16=config.bf16,
        fp16=False,
        activation_checkpointing=config.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        max_length=config.max_length,
        completion_only_loss=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        data_seed=config.seed,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),  # bf16 autocast on a CPU needs it said
    )
    return SFTConfig(**_for_installed_transformers(kwargs | extra, SFTConfig))


def _for_installed_transformers(kwargs: dict, config_class) -> dict:
    """transformers 5.2x renamed two arguments; map them back for older 5.x (e.g. a GPU image's 5.17)."""
    fields = config_class.__dataclass_fields__
    if "activation_checkpointing" in kwargs and "activation_checkpointing" not in fields:
        kwargs["gradient_checkpointing"] = kwargs.pop("activation_checkpointing")
    if "train_sampling_strategy" in kwargs and "train_sampling_strategy" not in fields:
        kwargs["group_by_length"] = kwargs.pop("train_sampling_strategy") == "group_by_length"
    return kwargs


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.target_modules,
                      bias="none", task_type="CAUSAL_LM")


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False,
          show: bool = True) -> Path:
    """Fine-tune `config.model` on `config.data`; return the output folder (it is the adapter)."""
    import datasets
    import torch
    import transformers
    from accelerate import PartialState
    from rich.console import Console
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from pricer.models.load import load_model, load_tokenizer, pick_device
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.progress import RichProgress
    from pricer.train.runcard import write_run_card

    if not config.data:
        raise PricerError("no training data: give --data (a saved data set or a .jsonl file)")
    if config.report_to == "wandb" and importlib.util.find_spec("wandb") is None:
        raise PricerError("--report-to wandb needs the wandb package: pip install 'pricer[wandb]'")
    datasets.disable_progress_bars()  # our own bar and one summary line say enough
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    state = PartialState(cpu=not torch.cuda.is_available())  # cpu=True: gloo when multi-process
    console = Console(quiet=not (show and state.is_main_process))
    device = pick_device()
    config = resolve(config, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)

    tokenizer = load_tokenizer(config.model)
    items = load_train_items(config.data, config.max_items)
    data = build_dataset(items, tokenizer, config.max_length)
    console.print(f"[bold]data[/] {config.data}: {data.n_items} items, {data.n_tokens} tokens, "
                  f"{data.n_truncated} shortened to fit max_length {config.max_length}, "
                  f"{data.n_skipped} skipped (no price)")
    checkpoint = check_out(config, data.fingerprint, resume, overwrite)
    state.wait_for_everyone()  # every process has read --out before the main one changes it
    if state.is_main_process:
        if overwrite and out.exists() and not resume:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(config.to_yaml())
        (out / FINGERPRINT_FILE).write_text(json.dumps({
            "data": str(config.data), "fingerprint": data.fingerprint, "items": data.n_items,
            "truncated": data.n_truncated, "skipped": data.n_skipped, "tokens": data.n_tokens}))
    state.wait_for_everyone()

    # freshly loaded for training: a 4-bit model that has already run inference on an
    # AVX512-BF16 CPU has repacked weights and would get no LoRA gradients
    model, _ = load_model(config.model, precision=config.precision, for_training=True,
                          device=None if state.device.type == "cpu" else str(state.device))
    progress = RichProgress(show=show, max_minutes=config.max_minutes)
    trainer = SFTTrainer(model=model, args=sft_config(config), train_dataset=data.dataset,
                         processing_class=tokenizer, peft_config=lora_config(config),
                         callbacks=[progress])
    trainer.remove_callback(PrinterCallback)  # the Rich bar replaces the printed log dicts
    if checkpoint:
        console.print(f"[bold]resume[/] from {checkpoint}")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started

    if not trainer.is_world_process_zero():
        return out
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    card = {
        "base_model": config.model, "data": str(config.data),
        "data_fingerprint": data.fingerprint, "items": data.n_items,
        "truncated": data.n_truncated, "skipped": data.n_skipped,
        "steps": trainer.state.global_step, "epochs": trainer.state.epoch or 0.0,
        "train_seconds": seconds, "tokens_per_s": progress.tokens_per_s or 0.0,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "final_loss": round(losses[-1], 4) if losses else round(result.training_loss, 4),
        "mean_loss": round(result.training_loss, 4),
        "device": device, "processes": state.num_processes, "resumed_from": checkpoint,
        "stopped_by_time_budget": progress.stopped_early,
        "config": config.to_dict(),
    }
    del trainer, model  # free memory before evaluation loads the model again
    if config.eval:
        from pricer.train.evaluation import evaluate_run

        card.update(evaluate_run(config, out, show=show))
    else:
        card["eval_note"] = "skipped (--no-eval)"
    write_run_card(out, card)
    if config.push_to_hub:
        push(out, config.push_to_hub)
    console.print(f"[bold green]done[/] {card['steps']} steps in {seconds:.0f} s, final loss "
                  f"{card['final_loss']}; adapter and run card in {out}")
    return out


def push(out: Path, repo: str) -> None:
    """Upload the adapter, tokenizer and run card to the Hub (needs network and a token)."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo,
                          ignore_patterns=["checkpoint-*", "runs/*"])
    except Exception as e:  # offline, no token, no rights: one clear line, the run is kept
        raise PricerError(f"push to the Hub failed ({type(e).__name__}: {str(e).splitlines()[0]});"
                          f" the run is saved in {out}") from None
