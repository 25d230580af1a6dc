"""One training run, read top to bottom: check --out -> tokenise the items it will train on ->
build the trainer (TRL SFTTrainer + LoRA/QLoRA) -> train -> save the adapter and the run card.

    from pricer.train import load_config, train
    out = train(load_config("demo", {"data": "runs/demo-data", "out": "runs/demo"}))

`build_trainer` is the one place a trainer is made (the benchmarks and tests use it too).
Evaluation after training is not done here: `pricer.evaluate.run.evaluate_run(out)` does it and
records it in the run card (`pricer train` and `pricer demo` call it). The same code runs on a
CPU, on a GPU, and data-parallel under `accelerate launch` (the HF Trainer reads the launcher's
environment; only the main process writes the run folder). Progress is reported through `say`
(one line of text) and TrainerCallbacks; this module prints nothing itself.
"""

import dataclasses
import importlib.util
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pricer.errors import PricerError
from pricer.models.run import CHECKPOINT, Run
from pricer.train.config import TrainConfig, resolve


# ---- the trainer ---------------------------------------------------------------------------

def sft_config(config: TrainConfig, **extra):
    """The TRL SFTConfig of a resolved run config."""
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
        **precision_args(config),
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
    )
    return SFTConfig(**_for_installed_transformers(kwargs | extra, SFTConfig))


def precision_args(config: TrainConfig) -> dict:
    """The TrainingArguments flags of a resolved config's mixed precision: bf16, or fp16 (the
    Trainer then scales the loss with a GradScaler), or neither; use_cpu where no GPU is visible
    (bf16 autocast on a CPU needs it said)."""
    import torch

    return {"bf16": config.bf16, "fp16": config.fp16, "use_cpu": not torch.cuda.is_available()}


def _for_installed_transformers(kwargs: dict, config_class) -> dict:
    """transformers 5.2x renamed two arguments; map them back for older 5.x (e.g. a GPU image's 5.17)."""
    fields = config_class.__dataclass_fields__
    if "activation_checkpointing" in kwargs and "activation_checkpointing" not in fields:
        kwargs["gradient_checkpointing"] = kwargs.pop("activation_checkpointing")
    if "train_sampling_strategy" in kwargs and "train_sampling_strategy" not in fields:
        kwargs["group_by_length"] = kwargs.pop("train_sampling_strategy") == "group_by_length"
    return kwargs


def lora_config(config: TrainConfig, layers: int | None = None):
    """The run's LoRA; with `lora_layers`, only on the top ones of the model's `layers` (the
    layers it runs: num_layers, else all)."""
    from peft import LoraConfig

    top = None
    if config.lora_layers:
        if config.lora_layers > layers:
            raise PricerError(f"lora_layers {config.lora_layers}: the model runs only {layers} layers")
        top = list(range(layers - config.lora_layers, layers))
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.target_modules,
                      layers_to_transform=top, bias="none", task_type="CAUSAL_LM")


def build_trainer(config: TrainConfig, tokenizer, dataset, *, model=None, device: str | None = None,
                  callbacks: Sequence = (), head_stats: tuple[float, float] = (0.0, 1.0), **args):
    """The SFTTrainer of a resolved `config`: LoRA (QLoRA at 4/8-bit) on `model` (default: the
    base model freshly loaded for training), trained on `dataset` (prompt/completion, or
    pre-tokenised input_ids/completion_mask). `args` override SFTConfig fields. The fast path
    (train/fast.py: LM head and loss only at the labelled tokens) is used where it applies.
    With `head: regression`, a HeadTrainer instead (train/head.py; `dataset` from
    build_head_dataset, `head_stats` its log-price mean and std)."""
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from pricer.models.load import load_model, load_run_weights
    from pricer.train import fast, loss
    from pricer.train.dropout import use_fast_dropout

    if model is None:
        # fresh: a 4-bit model that has already run inference on an AVX512-BF16 CPU has
        # repacked weights and would get no LoRA gradients (models/quant.py)
        model, _ = load_model(config.model, precision=config.precision, for_training=True,
                              device=device)
    if model.device.type == "cpu":  # before the frozen-layer cache, whose key names the attention
        # SDPA's CPU backward on padded rows of 128-160 tokens was 11 % of a cached head step,
        # the plain attention's products are 4 % (docs/train.md, profile_head_step)
        model.set_attn_implementation("eager")
    layers = config.num_layers or model.config.get_text_config().num_hidden_layers
    if config.head == "regression":
        from pricer.train.head import build_head_trainer

        trainer = build_head_trainer(config, tokenizer, dataset, model, *head_stats,
                                     lora=lora_config(config, layers),
                                     args=sft_config(config, **args), callbacks=[*callbacks])
        trainer.remove_callback(PrinterCallback)
        if config.init_from:
            load_run_weights(trainer.model, config.init_from)
        use_fast_dropout(trainer.model)  # dropout masks drawn faster on a CPU (train/dropout.py)
        return trainer
    use_fast = fast.applies(model) if config.fast_path == "auto" else config.fast_path
    if use_fast and not fast.applies(model):
        raise PricerError(f"fast_path: {config.model} transforms its logits or is a mixture of "
                          "experts; use --fast-path auto or false")
    if "weight" in (getattr(dataset, "column_names", None) or ()) and not use_fast:
        raise PricerError("balance_prices and prices_like weigh the generation path's loss on the "
                          f"fast path only, which {config.model} cannot take")
    number_loss = loss.trainer_args(config, tokenizer, use_fast)  # --loss ntl (train/loss.py)
    try:
        trainer = (fast.FastSFTTrainer if use_fast else SFTTrainer)(model=model, args=sft_config(config, **args), train_dataset=dataset,
                             processing_class=tokenizer, peft_config=lora_config(config, layers),
                             callbacks=list(callbacks), **number_loss)
    except ValueError as e:
        if "Target module" not in str(e):
            raise
        raise PricerError(f"target_modules {','.join(config.target_modules)}: not in "
                          f"{config.model} ({str(e).splitlines()[0]})") from None
    trainer.remove_callback(PrinterCallback)  # log dicts go to the callbacks, not to stdout
    if config.init_from:
        load_run_weights(trainer.model, config.init_from)
    # the frozen bottom layers' output read from a cache, computed once (train/frozen.py)
    from pricer.train.frozen import use_frozen_decoder

    trainer.frozen_note = use_frozen_decoder(config, trainer, use_fast)
    use_fast_dropout(trainer.model)  # dropout masks drawn faster on a CPU (train/dropout.py)
    return trainer


# ---- the output folder ---------------------------------------------------------------------

def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Before any work: may this run write into `out`?"""
    if resume and overwrite:
        raise PricerError("choose one of --resume and --overwrite")
    if out.exists() and not out.is_dir():
        raise PricerError(f"{out}: is a file; --out must be a folder")
    if not out.exists() or not any(out.iterdir()):
        if resume:
            raise PricerError(f"{out}: nothing to resume (no run there yet)")
        return
    if not Run(out).exists():  # never offer to delete what pricer did not write
        raise PricerError(f"{out} is not empty and holds no pricer run; choose another --out")
    if not resume and not overwrite:
        raise PricerError(f"{out} already holds a run; pass --resume to continue it or "
                          "--overwrite to replace it")


def saved_run(out: Path) -> tuple[dict, dict]:
    """(settings, data fingerprint record) of the run in `out`, as it wrote them."""
    run = Run(out)
    # a key added since: its default (prompt_format), or what runs did before it (no fp16)
    return TrainConfig().to_dict() | {"fp16": False} | run.need_config(), run.data()


def items_read(config: TrainConfig, processes: int, resume: bool) -> int | None:
    """How many items to read: a resumed run reads the items its first part read (an extended
    run goes on over the same items, as the Trainer does), a new run `items_needed`."""
    if resume:
        _, data = saved_run(Path(config.out))
        if "items" in data and "skipped" in data:
            return data["items"] + data["skipped"]
    return items_needed(config, processes)


def resume_point(config: TrainConfig, fingerprint: str) -> tuple[str, list[str]]:
    """(newest complete checkpoint, incomplete newer ones) of the run in `config.out`, after
    checking that it is the same run: the same settings (paths compared resolved; max_steps and
    epochs may be raised) and the same data. A refusal names each differing setting once."""
    out = Path(config.out)
    saved, data = saved_run(out)
    differ = Run.differences(saved, config.to_dict())
    if data.get("fingerprint") != fingerprint and "data" not in differ:
        differ.append("data")
    if differ:
        raise PricerError(f"{out} holds a different run ({', '.join(differ)} differ); "
                          "use another --out or --overwrite")
    complete = Run(out).complete_checkpoints()
    if not complete:
        raise PricerError(f"{out}: no complete checkpoint to resume from (it is saved every "
                          f"{config.save_steps} steps)")
    newest = int(CHECKPOINT.match(complete[0].name)[1])
    broken = [p.name for p in Run(out).checkpoints() if int(CHECKPOINT.match(p.name)[1]) > newest]
    return str(complete[0]), sorted(broken)


# ---- the run -------------------------------------------------------------------------------

def build_data(config: TrainConfig, items, tokenizer):
    """(the run's training data, the head's log-price mean and std): prompt/completion pairs for
    the generation recipe, token ids + labels for `head: regression` (train/head.py)."""
    from pricer.data.balance import prices_like
    from pricer.train.dataset import build_dataset

    like = prices_like(config.prices_like) if config.prices_like else None
    if config.head == "regression":
        from pricer.train.head import build_head_dataset

        data = build_head_dataset(items, tokenizer, config.max_length, config.prompt_format,
                                  config.balance_prices, like)
        return data, (data.log_mean, data.log_std)
    return build_dataset(items, tokenizer, config.max_length, config.prompt_format,
                         config.balance_prices, like), (0.0, 1.0)


def items_needed(config: TrainConfig, processes: int) -> int | None:
    """How many items a run can use: max_steps x batch x accumulation x processes when
    max_steps is set (so a 5-step run does not tokenise 14,000 items), and max_items."""
    limits = [config.max_items] if config.max_items else []
    if config.max_steps > 0:
        limits.append(config.max_steps * config.batch_size * config.grad_accum * processes)
    return min(limits) if limits else None


def planned_steps(config: TrainConfig, n_items: int, processes: int) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_step = config.batch_size * config.grad_accum * processes
    return max(1, int(config.epochs * -(-n_items // per_step)))


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False,
          say: Callable[[str], None] | None = None, callbacks: Sequence = ()) -> Path:
    """Fine-tune `config.model` on `config.data`; return the output folder (it is the adapter).

    `say` receives one line per stage (data, trainable parameters, logs, resume, done) on the
    main process; `callbacks` are extra TrainerCallbacks (a progress bar)."""
    import datasets
    import torch
    import transformers
    from accelerate import PartialState

    from pricer.models.default import public_id
    from pricer.models.load import load_tokenizer
    from pricer.models.precision import resolve_precision
    from pricer.train.dataset import load_train_items
    from pricer.train.progress import RunClock
    from pricer.models.run import precision_fields

    if not config.data:
        raise PricerError("no training data: give --data (a saved data set or a .jsonl file)")
    if config.report_to == "wandb" and importlib.util.find_spec("wandb") is None:
        raise PricerError("--report-to wandb needs the wandb package: pip install 'pricer[wandb]'")
    datasets.disable_progress_bars()  # the caller's bar and one summary line say enough
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    state = PartialState(cpu=not torch.cuda.is_available())  # cpu=True: gloo when multi-process
    main = state.is_main_process
    say = say if (say and main) else (lambda line: None)
    device = None if state.device.type == "cpu" else str(state.device)
    config = resolve(config, device)
    out = Path(config.out)
    check_out(out, resume, overwrite)
    if config.threads:
        torch.set_num_threads(config.threads)

    tokenizer = load_tokenizer(config.model)
    needed = items_read(config, state.num_processes, resume)
    items = load_train_items(config.data, None if config.holdout else needed)
    if config.holdout:  # the ensemble's validation slice stays unseen
        from pricer.data.validation import without_slice

        items = without_slice(items, config.holdout, needed, config.seed, config.holdout_pool)
    data, head_stats = build_data(config, items, tokenizer)
    say(f"data {config.data}: {data.n_items} items, {data.n_tokens} tokens, {data.n_truncated} "
        f"shortened to fit max_length {config.max_length}, {data.n_skipped} skipped (no price)")
    if config.batch_tokens:  # a token budget: as many items as fit, padded to the longest
        config = dataclasses.replace(config, batch_size=max(1, config.batch_tokens // data.max_tokens))
        say(f"batch_tokens {config.batch_tokens}: batch size {config.batch_size} (longest item "
            f"{data.max_tokens} tokens)")
    checkpoint, broken = resume_point(config, data.fingerprint) if resume else (None, [])

    clock = RunClock(max_minutes=config.max_minutes)
    steps = planned_steps(config, data.n_items, state.num_processes)
    created = not out.exists()
    try:  # every setting is checked here, before anything is written into --out
        trainer = build_trainer(config, tokenizer, data.dataset, device=device,
                                callbacks=[clock, *callbacks], head_stats=head_stats,
                                logging_steps=min(config.logging_steps, max(1, steps // 4)))
    except BaseException:
        if created and main:
            shutil.rmtree(out, ignore_errors=True)  # the Trainer may have made it: leave nothing
        raise
    state.wait_for_everyone()  # every process has read --out before the main one changes it
    if main:
        if overwrite:
            shutil.rmtree(out)  # check_out made sure it holds a pricer run
        for name in broken:  # half-written by a kill during a save; we resume before it
            shutil.rmtree(out / name)
        Run(out).start(config.to_yaml(), {
            "data": str(config.data), "fingerprint": data.fingerprint, "items": data.n_items,
            "truncated": data.n_truncated, "skipped": data.n_skipped, "tokens": data.n_tokens})
    state.wait_for_everyone()

    trainable, total = trainer.model.get_nb_trainable_parameters()
    say(f"trainable params: {trainable:,d} || all params: {total:,d} || "
        f"trainable%: {100 * trainable / total:.4f}")
    if getattr(trainer, "frozen_note", None):  # the frozen-layer cache (train/frozen.py)
        say(trainer.frozen_note)
    if config.report_to == "tensorboard":
        say(f"TensorBoard logs: {out / 'runs'} (tensorboard --logdir {out / 'runs'})")
    if checkpoint:
        skipped = f" (incomplete {', '.join(broken)} removed)" if broken else ""
        say(f"resume from {Path(checkpoint).name}{skipped}")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started

    # the adapter names the public model, not a folder in this machine's cache (checkpoints keep
    # the folder: PEFT would otherwise ask the Hub about that name at every save); no embedding
    # layer is trained, so PEFT's check of them (another Hub request) is skipped
    for adapter in trainer.model.peft_config.values():
        adapter.base_model_name_or_path = public_id(config.model)
    if trainer.is_fsdp_enabled:  # every process gives its shard to one full adapter (untested: no GPUs here)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return out
    if not trainer.is_fsdp_enabled:
        trainer.model.save_pretrained(out, save_embedding_layers=False)
    tokenizer.save_pretrained(out)
    _name_base_in_model_card(out, config.model)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    settled = resolve_precision(config.precision, device, "training", config.bf16, config.fp16)
    card = {
        "base_model": config.model, "data": str(config.data),
        "data_fingerprint": data.fingerprint, "items": data.n_items,
        "truncated": data.n_truncated, "skipped": data.n_skipped,
        "lora_parameters": trainable, "all_parameters": total,
        "steps": trainer.state.global_step, "epochs": trainer.state.epoch or 0.0,
        "train_seconds": seconds, "tokens_per_s": clock.tokens_per_s or 0.0,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "final_loss": round(losses[-1], 4) if losses else round(result.training_loss, 4),
        "mean_loss": round(result.training_loss, 4), "losses": [round(x, 4) for x in losses],
        "device": str(state.device.type), "processes": state.num_processes,
        **precision_fields(settled),
        "resumed_from": checkpoint, "stopped_by_time_budget": clock.stopped_early,
        "logs": str(out / "runs") if config.report_to == "tensorboard" else config.report_to,
        "evaluation": None,
        "eval_note": "not evaluated yet" if config.eval else "skipped (--no-eval)",
        "config": config.to_dict(),
    }
    Run(out).write_card(card)
    say(f"done {card['steps']} steps in {seconds:.0f} s, final loss {card['final_loss']}; "
        f"adapter and run card in {out}")
    return out


def _name_base_in_model_card(out: Path, model: str) -> None:
    """TRL's model card names only Hub models ("fine-tuned version of [None]" for a folder):
    name the base the user gave instead."""
    from pricer.models.default import public_id

    card = out / "README.md"
    if card.is_file():
        text = card.read_text()
        card.write_text(text.replace("[None](https://huggingface.co/None)", f"`{public_id(model)}`"))


def push(out: Path, repo: str) -> None:
    """Upload the adapter, tokenizer and run card to the Hub (needs network and a token);
    `pricer train --push-to-hub` calls it after the evaluation."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo,
                          ignore_patterns=["checkpoint-*", "runs/*"])
    except Exception as e:  # offline, no token, no rights: one clear line, the run is kept
        raise PricerError(f"push to the Hub failed ({type(e).__name__}: {str(e).splitlines()[0]});"
                          f" the run is saved in {out}") from None
