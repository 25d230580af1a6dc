"""One training run, described by one dataclass: read from YAML, overridden from the command line.

The defaults are the reference recipe (price-is-right.md, section 5): LoRA r 32 / alpha 64 /
dropout 0.1 on q/k/v/o, lr 1e-4 cosine with 3 % warm-up, weight decay 0.001, grad-norm 0.3,
batch 4, 1 epoch, max length 182, group_by_length, save every 2000 steps keeping 10, log every 50.
"auto" fields are settled by `resolve()` for the machine we run on: 4-bit NF4 + paged AdamW
32-bit + bf16 on a GPU; fp32 LoRA + adamw_torch on a CPU, with bf16 autocast on CPUs that
compute bf16 fast (AVX512-BF16 / AMX: ~2x less CPU time per step on ours).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pricer.errors import PricerError

PRECISIONS = ("auto", "fp32", "bf16", "4bit", "8bit")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
REPORT_TO = ("tensorboard", "wandb", "none")


@dataclass
class TrainConfig:
    # what to train, on what, where to write it
    model: str = "default"
    data: str | None = None  # saved data set folder (train split) or .jsonl/.csv/.parquet
    out: str = "runs/train"
    max_items: int | None = None  # first N training items only (None: all)
    # LoRA / QLoRA
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    precision: str = "auto"  # auto: 4bit on GPU, fp32 on CPU
    # optimisation
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_minutes: float | None = None  # stop (and save) after this much training time
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    optim: str = "auto"  # auto: paged_adamw_32bit on GPU, adamw_torch on CPU
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    max_length: int = 182
    bf16: str | bool = "auto"  # mixed precision; auto: where the device computes bf16 fast
    group_by_length: bool = True
    gradient_checkpointing: str | bool = "auto"  # auto: on for 4/8-bit (GPU memory), off otherwise
    seed: int = 42
    threads: int | None = None  # torch CPU threads (None: torch's default)
    # checkpoints and logs
    save_steps: int = 2000
    save_total_limit: int = 10
    logging_steps: int = 50
    report_to: str = "tensorboard"
    push_to_hub: str | None = None  # Hub repo id for the adapter
    # evaluation after training
    eval: bool = True
    eval_data: str | None = None  # None: the test split of `data` when it is a saved data set
    eval_size: int = 250
    eval_predictor: str = "greedy"
    results_dir: str = "results"

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
    try:
        if name in ("bf16", "gradient_checkpointing"):
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
        (config.grad_accum > 0, "grad_accum must be > 0"),
        (0 <= config.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
        (config.weight_decay >= 0, "weight_decay must be >= 0"),
        (config.max_grad_norm > 0, "max_grad_norm must be > 0"),
        (config.max_length >= 16, "max_length must be >= 16"),
        (config.save_steps > 0, "save_steps must be > 0"),
        (config.save_total_limit > 0, "save_total_limit must be > 0"),
        (config.logging_steps > 0, "logging_steps must be > 0"),
        (config.eval_size > 0, "eval_size must be > 0"),
        (config.max_items is None or config.max_items > 0, "max_items must be > 0"),
        (config.threads is None or config.threads > 0, "threads must be > 0"),
        (config.max_minutes is None or config.max_minutes > 0, "max_minutes must be > 0"),
        (config.max_steps == -1 or config.max_steps > 0, "max_steps must be > 0 (or -1: use epochs)"),
        (config.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        (config.lr_scheduler in SCHEDULERS, f"lr_scheduler must be one of {', '.join(SCHEDULERS)}"),
        (config.report_to in REPORT_TO, f"report_to must be one of {', '.join(REPORT_TO)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise PricerError(f"bad config: {message}")
    return config


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the YAML file, then the command-line overrides (None = not given)."""
    values: dict = {}
    if path is not None:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise PricerError(f"{path}: no such config file")
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


def resolve(config: TrainConfig, device: str) -> TrainConfig:
    """Settle every "auto" for `device` ("cuda" or "cpu"); the result is what the run records."""
    import torch

    gpu = device.startswith("cuda")
    precision = config.precision
    if precision == "auto":
        precision = "4bit" if gpu else "fp32"
    optim = config.optim
    if optim == "auto":
        optim = "paged_adamw_32bit" if gpu else "adamw_torch"
    bf16 = config.bf16
    if bf16 == "auto":  # bf16 autocast where the hardware computes bf16 fast
        bf16 = torch.cuda.is_bf16_supported() if gpu else (
            precision == "fp32" and torch.ops.mkldnn._is_mkldnn_bf16_supported())  # AVX512-BF16/AMX
    checkpointing = config.gradient_checkpointing
    if checkpointing == "auto":
        checkpointing = precision in ("4bit", "8bit")
    return dataclasses.replace(config, precision=precision, optim=optim, bf16=bf16,
                               gradient_checkpointing=checkpointing)
