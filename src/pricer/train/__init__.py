"""Training: LoRA / QLoRA fine-tuning with the loss on the price only, read top to bottom in
`run.py`. Imported lazily, so that `import pricer.train` costs nothing.

    from pricer.train import load_config, train
    out = train(load_config("demo", {"data": "runs/demo-data", "out": "runs/demo"}))
    # evaluation after training: pricer.evaluate.run.evaluate_run(out)
"""

from importlib import import_module

_PUBLIC = {
    "TrainConfig": "config", "load_config": "config", "resolve": "config",
    "train": "run", "build_trainer": "run", "check_out": "run", "push": "run",
    "build_dataset": "dataset", "load_train_items": "dataset",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f"pricer.train.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'pricer.train' has no attribute {name!r}")
