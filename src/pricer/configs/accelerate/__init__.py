"""accelerate launch configs shipped with pricer (docs/multi-gpu.md).

    ddp          data-parallel: one (4-bit) copy of the model per GPU
    fsdp-qlora   FSDP FULL_SHARD + QLoRA: the 4-bit weights sharded across the GPUs

`python -m pricer.configs.accelerate NAME` prints the file's path, for
`accelerate launch --config_file $(python -m pricer.configs.accelerate ddp) -m pricer train ...`.
"""

from importlib.resources import files
from pathlib import Path

from pricer.errors import PricerError

CONFIGS = {"ddp": "ddp.yaml", "fsdp-qlora": "fsdp_qlora.yaml"}


def config_path(name: str) -> Path:
    """The path of a shipped accelerate config, by name (ddp, fsdp-qlora)."""
    if name not in CONFIGS:
        raise PricerError(f"unknown accelerate config '{name}' (choose from {', '.join(CONFIGS)})")
    return Path(str(files(__name__) / CONFIGS[name]))
