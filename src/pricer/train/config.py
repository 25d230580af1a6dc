"""One training run, described by one dataclass: read from YAML, overridden from the command line.

The defaults are the reference recipe (price-is-right.md, section 5): LoRA r 32 / alpha 64 /
dropout 0.1 on q/k/v/o, lr 1e-4 cosine with 3 % warm-up, weight decay 0.001, grad-norm 0.3,
batch 4, 1 epoch, max length 182, group_by_length, save every 2000 steps keeping 10, log every 50.
"auto" fields are settled by `resolve()` for the machine we run on: 4-bit NF4 + paged AdamW
32-bit + bf16 on a GPU (fp16 with loss scaling on a GPU without bf16: T4, V100); fp32 LoRA +
adamw_torch on a CPU, with bf16 autocast on CPUs that compute bf16 fast (AVX512-BF16 / AMX: ~2x
less CPU time per step on ours).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pricer.errors import PricerError

from pricer.data.prompts import FORMATS
from pricer.models.precision import PRECISIONS

SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
REPORT_TO = ("tensorboard", "wandb", "none")
EVAL_PREDICTORS = ("auto", "greedy", "topk", "expected", "head")  # predictors that read a run
HEADS = ("none", "regression")
LOSSES = ("ce", "ntl", "ntl-mse")  # on the price tokens (train/loss.py)
CONFIGS = ("reference", "reference-2025-lite", "reference-2025-full", "demo", "amazon",
           "amazon-head")  # shipped with the package (pricer/configs/NAME.yaml)


def option(default, help: str, **kwargs):
    """A config field with its help text (the command line's options are made from these, as
    HfArgumentParser does with TrainingArguments)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class TrainConfig:
    # what to train, on what, where to write it
    model: str = option("default", "Base model: 'default' (offline SmolLM2-135M), a folder or a Hub id.")
    data: str | None = option(None, "Saved data set folder (train split) or .jsonl/.csv/.parquet with text and price.")
    out: str = option("runs/train", "Output folder: checkpoints, adapter, run card.")
    max_items: int | None = option(None, "Use only the first N training items (default: all).")
    holdout: int = option(0, "Leave out the validation slice of `pricer ensemble --val-size N` "
                          "(the same seeded carve, with --seed as the ensemble's --seed), so "
                          "this run can be an ensemble member.")
    holdout_pool: int = option(0, "Draw that slice from the first N train items only, as "
                               "`pricer ensemble --val-pool N` (e.g. 997: the test-like reference "
                               "split at the start of amazon-pricer's train.jsonl); 0: from all.")
    # LoRA / QLoRA
    lora_r: int = option(32, "LoRA rank.")
    lora_alpha: int = option(64, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = option(0.1, "Dropout on the LoRA input.")
    target_modules: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"],
                                       "Modules that get LoRA layers (comma-separated).")
    precision: str = option("auto", "auto | fp32 | bf16 | fp16 | 4bit | 8bit (auto: 4bit on a GPU, fp32 on a CPU).")
    # optimisation
    epochs: float = option(1.0, "Epochs over the training items.")
    max_steps: int = option(-1, "Stop after N optimiser steps (> 0 overrides epochs).")
    max_minutes: float | None = option(None, "Time budget: stop (and save) after this much training time.")
    batch_size: int = option(4, "Per-device batch size.")
    batch_tokens: int | None = option(None, "Size batches by tokens instead: batch_size = this // the "
                                      "longest item's tokens (items are padded to the longest "
                                      "of a batch); as large as memory allows on a GPU.")
    grad_accum: int = option(1, "Gradient accumulation steps.")
    learning_rate: float = option(1e-4, "Peak learning rate.")
    lr_scheduler: str = option("cosine", "cosine | linear | constant | constant_with_warmup.")
    warmup_ratio: float = option(0.03, "Warm-up, as a fraction of all steps.")
    optim: str = option("auto", "Optimiser (auto: paged_adamw_32bit on a GPU, adamw_torch on a CPU).")
    weight_decay: float = option(0.001, "Weight decay.")
    max_grad_norm: float = option(0.3, "Gradient clipping norm.")
    max_length: int = option(182, "Tokens per item (prompt + price); longer descriptions are shortened.")
    prompt_format: str = option("2024", "Prompt format: 2024 (the reference) | 2025 (new question, description cut to 110 tokens).")
    bf16: str | bool = option("auto", "bf16 mixed precision: auto | true | false (auto: where the device computes bf16 fast).")
    fp16: str | bool = option("auto", "fp16 mixed precision with loss scaling: auto | true | false (auto: on a GPU without bf16, e.g. T4, V100).")
    group_by_length: bool = option(True, "Batch items of similar length together.")
    gradient_checkpointing: str | bool = option("auto", "auto | true | false (auto: on for 4/8-bit).")
    fast_path: str | bool = option("auto", "LM head and loss only at the labelled (price) tokens: auto | true | false (auto: where the model allows; same loss).")
    loss: str = option("ce", "Loss on the price tokens: ce (cross-entropy) | ntl (+ Number Token "
                       "Loss: Wasserstein distance of the digit distribution to the true digit) | "
                       "ntl-mse (+ squared error of the expected digit). train/loss.py.")
    loss_weight: float = option(0.3, "Weight of the number token loss added to cross-entropy "
                                "(--loss ntl / ntl-mse; 0: plain cross-entropy).")
    # the regression head (models/head.py): no vocabulary projection, a price from hidden states
    head: str = option("none", "none: learn to write the price | regression: a small MLP on the "
                       "last token's hidden states learns log price (no vocabulary projection).")
    head_layers: int = option(1, "Regression head: read this many top layers.")
    head_pooling: str = option("both", "Regression head: last (the last token's state) | mean (over "
                               "the prompt's tokens) | both (concatenated).")
    head_width: int = option(256, "Regression head: hidden width of its MLP.")
    head_learning_rate: float = option(1e-3, "Regression head: learning rate of the MLP (LoRA uses --learning-rate).")
    num_layers: int | None = option(None, "Regression head: run only the first N decoder layers "
                                    "(the head reads layer N; default: all).")
    lora_layers: int | None = option(None, "LoRA only on the top N layers: the backward pass stops "
                                     "there (default: every layer).")
    frozen_cache: str | bool = option("auto", "With lora_layers (a head run, or the generation "
                                      "path's fast path): compute the frozen "
                                      "bottom layers' output once per item, keep it memory-mapped "
                                      "in the pricer cache and reuse it at every step, epoch and "
                                      "--init-from run: auto | true | false (auto: where it gives "
                                      "the same loss; train/frozen.py).")
    balance_prices: bool = option(False, "Weight items (the head's loss, or the generation path's "
                                  "on the fast path) so that every price band ($0-10, 10-25, "
                                  "25-50, 50-100, 100-200, 200-400, 400+) counts the same.")
    prices_like: str | None = option(None, "Weight items (as balance_prices) so that their price "
                                     "bands weigh like this file's items (e.g. train items known to "
                                     "be like the test split; only their prices are read).")
    init_from: str | None = option(None, "Start from this run's adapter (and head): a further "
                                   "epoch or other weights, with a fresh optimiser and schedule.")
    seed: int = option(42, "Random seed (weights of LoRA, data order).")
    threads: int | None = option(None, "torch CPU threads (default: torch's choice).")
    # checkpoints and logs
    save_steps: int = option(2000, "Save a checkpoint every N steps.")
    save_total_limit: int = option(10, "Keep at most N checkpoints.")
    logging_steps: int = option(50, "Log the loss every N steps (fewer on short runs, so a few logs happen).")
    report_to: str = option("tensorboard", "tensorboard | wandb | none.")
    push_to_hub: str | None = option(None, "Hub repo id to upload the adapter to (online).")
    # evaluation after training (by `pricer train` / `pricer demo`, pricer.evaluate.run)
    eval: bool = option(True, "Evaluate the adapter on test items after training.")
    eval_data: str | None = option(None, "Items to evaluate on (default: the data set's test split).")
    eval_size: int | None = option(250, "Evaluate on the first N test items (all: the whole split).")
    eval_predictor: str = option("auto", "How to read the price after training: greedy | topk | "
                                 "expected | head (auto: head for a regression-head run, else greedy).")
    results_dir: str = option("results", "Folder of result JSONs and charts.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise PricerError(f"{name}: expected true or false, got '{value}'")


def _coerce(name: str, value):
    """Turn a YAML or command-line value into the field's type (CLI values arrive as strings)."""
    kind = str(FIELDS[name].type)
    kind = FIELDS[name].type.__name__ if kind.startswith("<class") else kind  # int, not <class 'int'>
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")
                         and "None" in kind):
        return None
    if name == "eval_size" and str(value).strip().lower() == "all":
        return None
    try:
        if name in ("bf16", "fp16", "gradient_checkpointing", "fast_path", "frozen_cache"):
            return "auto" if str(value).lower() == "auto" else _bool(value, name)
        if kind.startswith("bool"):
            return _bool(value, name)
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("list"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]
        return str(value)
    except (TypeError, ValueError):
        kind = "whole number or all" if name == "eval_size" else kind
        raise PricerError(f"{name}: '{value}' is not a valid {kind}") from None


def validate(config: TrainConfig) -> TrainConfig:
    """Refuse settings that cannot train (one clear line each)."""
    checks = [
        (config.lora_r > 0, "lora_r must be > 0"),
        (config.lora_alpha > 0, "lora_alpha must be > 0"),
        (0 <= config.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
        (bool(config.target_modules), "target_modules must name at least one module"),
        (config.learning_rate > 0, "learning_rate must be > 0"),
        (config.epochs > 0, "epochs must be > 0"),
        (config.batch_size > 0, "batch_size must be > 0"),
        (config.batch_tokens is None or config.batch_tokens > 0, "batch_tokens must be > 0"),
        (config.grad_accum > 0, "grad_accum must be > 0"),
        (0 <= config.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
        (config.weight_decay >= 0, "weight_decay must be >= 0"),
        (config.max_grad_norm > 0, "max_grad_norm must be > 0"),
        (config.max_length >= 16, "max_length must be >= 16"),
        (config.save_steps > 0, "save_steps must be > 0"),
        (config.save_total_limit > 0, "save_total_limit must be > 0"),
        (config.logging_steps > 0, "logging_steps must be > 0"),
        (config.eval_size is None or config.eval_size > 0, "eval_size must be > 0 (or all)"),
        (config.max_items is None or config.max_items > 0, "max_items must be > 0"),
        (config.holdout >= 0, "holdout must be >= 0"),
        (config.holdout_pool >= 0, "holdout_pool must be >= 0"),
        (config.threads is None or config.threads > 0, "threads must be > 0"),
        (config.max_minutes is None or config.max_minutes > 0, "max_minutes must be > 0"),
        (config.max_steps == -1 or config.max_steps > 0, "max_steps must be > 0 (or -1: use epochs)"),
        (config.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        (config.prompt_format in FORMATS, f"prompt_format must be one of {', '.join(FORMATS)}"),
        (config.lr_scheduler in SCHEDULERS, f"lr_scheduler must be one of {', '.join(SCHEDULERS)}"),
        (config.report_to in REPORT_TO, f"report_to must be one of {', '.join(REPORT_TO)}"),
        (config.eval_predictor in EVAL_PREDICTORS,
         f"eval_predictor must be one of {', '.join(EVAL_PREDICTORS)}"),
        (config.head in HEADS, f"head must be one of {', '.join(HEADS)}"),
        (config.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
        (config.loss_weight >= 0, "loss_weight must be >= 0"),
        (config.loss == "ce" or config.head == "none",
         "--loss ntl is for a run that writes the price; a --head regression run has its own loss"),
        (config.head_layers > 0, "head_layers must be > 0"),
        (config.head_width > 0, "head_width must be > 0"),
        (config.head_pooling in ("last", "mean", "both"), "head_pooling must be last, mean or both"),
        (config.head_learning_rate > 0, "head_learning_rate must be > 0"),
        (config.num_layers is None or config.num_layers > 0, "num_layers must be > 0"),
        (config.lora_layers is None or config.lora_layers > 0, "lora_layers must be > 0"),
        (config.head == "regression" or config.num_layers is None,
         "num_layers needs --head regression (an LM head after fewer layers would write nonsense)"),
        (config.head == "regression" or config.fast_path is not False
         or not (config.balance_prices or config.prices_like),
         "balance_prices and prices_like weigh the generation path's loss on the fast path only "
         "(--fast-path auto)"),
        (not (config.balance_prices and config.prices_like),
         "choose one of balance_prices and prices_like"),
        ((config.head == "regression") == (config.eval_predictor in ("auto", "head"))
         or config.eval_predictor == "auto",
         "a --head regression run is read by eval_predictor head; greedy/topk/expected read a "
         "run that learned to write the price"),
    ]
    for ok, message in checks:
        if not ok:
            raise PricerError(f"bad config: {message}")
    return config


def config_path(config: str | Path) -> Path:
    """A config file: an existing path, else one shipped with the package by name ("reference",
    "demo", "amazon", with or without .yaml)."""
    path = Path(config)
    if path.is_file():
        return path
    name = path.name.removesuffix(".yaml")
    if str(config) in (name, f"{name}.yaml") or str(path.parent) == "configs":
        from importlib.resources import files

        shipped = files("pricer") / "configs" / f"{name}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
    raise PricerError(f"{config}: no such config file (shipped configs: {', '.join(CONFIGS)})")


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the YAML file (a path or a shipped config's name), then the command-line
    overrides (None = not given)."""
    values: dict = {}
    if path is not None:
        import yaml

        path = config_path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise PricerError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise PricerError(f"{path}: expected a mapping of config keys")
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise PricerError(f"unknown config key(s): {', '.join(unknown)} "
                          f"(known: {', '.join(FIELDS)})")
    config = TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    return validate(config)


def resolve(config: TrainConfig, device: str | None = None) -> TrainConfig:
    """Settle every "auto" for `device` (None: the one `pick_device` chooses) with the project's
    one precision rule (pricer.models.precision); the result is what the run records."""
    from pricer.models.precision import resolve_precision

    settled = resolve_precision(config.precision, device, purpose="training",
                                mixed_bf16=config.bf16, mixed_fp16=config.fp16)
    gpu = settled.device.startswith("cuda")
    optim = config.optim
    if optim == "auto":
        optim = "paged_adamw_32bit" if gpu else "adamw_torch"
    reader = config.eval_predictor
    if reader == "auto":
        reader = "head" if config.head == "regression" else "greedy"
    checkpointing = config.gradient_checkpointing
    if checkpointing == "auto":
        checkpointing = settled.quantized  # 4/8-bit: GPU memory first, as the reference
    return dataclasses.replace(config, precision=settled.name, optim=optim, eval_predictor=reader,
                               bf16=settled.mixed == "bf16", fp16=settled.mixed == "fp16",
                               gradient_checkpointing=checkpointing)
