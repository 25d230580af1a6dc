"""`pricer train` (issue 5): LoRA / QLoRA fine-tuning with the loss on the price only.

    from pricer.train import load_config, train
    out = train(load_config("configs/demo.yaml", {"data": "runs/demo-data"}))
"""

from pricer.train.config import TrainConfig, load_config
from pricer.train.run import train

__all__ = ["TrainConfig", "load_config", "train"]
