"""Models: the base model (the offline default, a folder or a Hub id) at a precision, with or
without a LoRA adapter. Imported lazily, so that `import pricer.models` costs nothing.

    from pricer.models import load_model
    model, tokenizer = load_model("default", adapter="runs/demo", precision="auto")
"""

from importlib import import_module

_PUBLIC = {
    "load_model": "load", "load_tokenizer": "load", "load_base": "load",
    "attach_adapter": "load", "detach_adapter": "load",
    "resolve_precision": "precision", "precision_of": "precision", "pick_device": "precision",
    "Precision": "precision", "PRECISIONS": "precision",
    "DEFAULT_MODEL": "default", "DEFAULT_HUB_ID": "default", "default_model_dir": "default",
    "public_id": "default",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f"pricer.models.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'pricer.models' has no attribute {name!r}")
