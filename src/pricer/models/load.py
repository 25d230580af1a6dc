"""Resolve and load a base model (and optionally a LoRA adapter) at a chosen precision.

A model is "default" (the offline SmolLM2-135M, see `default.py`), a local folder, or a Hub id
(`org/name`, with an optional revision: branch, tag or commit). An adapter is a local folder or a
Hub id, attached with PEFT. Precision: fp32, bf16, fp16, 8bit, 4bit (NF4, double quantisation,
bf16 compute; fp16 on a GPU without bf16), or auto, settled by the one rule in `precision.py` (`resolve_precision`). Every user mistake becomes a one-line
`PricerError` that says what to do.

Safety: weights are read from safetensors only; pickle checkpoints (`.bin`) can run code when
loaded and are refused unless `allow_pickle=True`. Code shipped inside a model repo
(`trust_remote_code`) never runs unless asked for.
"""

import json
import re
from contextlib import contextmanager
from pathlib import Path

from pricer.errors import PricerError
from pricer.models.default import DEFAULT_MODEL, default_model_dir
from pricer.models.precision import PRECISIONS, pick_device, precision_of, resolve_precision
from pricer.models.run import ADAPTER_CONFIG, ADAPTER_WEIGHTS, CONFIG, Run
from pricer.models.quant import keep_trainable_4bit, quantization_config

__all__ = ["load_model", "load_tokenizer", "load_base", "attach_adapter", "detach_adapter",
           "resolve_model", "resolve_adapter", "pick_device", "PRECISIONS"]  # pick_device: re-export
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
PICKLE_HINT = ("pickle files can run code when loaded: convert to safetensors, or pass "
               "--allow-pickle if you trust the source")


def is_local(name: str) -> bool:
    """A folder on disk (existing or clearly meant as a path), rather than a Hub id."""
    return Path(name).expanduser().exists() or not HUB_ID.match(name) or name.startswith(".")


def check_model_folder(folder: Path, allow_pickle: bool = False) -> None:
    """A base-model folder needs config.json and safetensors weights (or .bin when allowed)."""
    if not folder.is_dir():
        raise PricerError(f"{folder}: no such model folder")
    if not (folder / "config.json").exists():
        raise PricerError(f"{folder}: no config.json, so not a transformers model folder")
    if any(folder.glob("*.safetensors")):
        return
    if any(folder.glob("*.bin")):
        if allow_pickle:
            return
        raise PricerError(f"{folder}: only pickle weights (.bin), no safetensors; {PICKLE_HINT}")
    raise PricerError(f"{folder}: no weights (*.safetensors) beside config.json")


@contextmanager
def hub_errors(what: str, repo: str, revision: str | None = None):
    """Turn huggingface_hub's exceptions into one-line PricerErrors that say what to do."""
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        yield
    except RevisionNotFoundError:
        raise PricerError(f"{what} '{repo}' has no revision '{revision}'") from None
    except GatedRepoError:  # before its parent class, RepositoryNotFoundError
        raise PricerError(f"{what} '{repo}' is gated: accept its licence on the Hub, then "
                          "`hf auth login` or set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise PricerError(f"{what} '{repo}' is neither a local folder nor a Hub repo (if it is "
                          "private: `hf auth login` or set HF_TOKEN)") from None
    except LocalEntryNotFoundError:
        raise PricerError(f"{what} '{repo}' (revision {revision or 'main'}) is not in the local "
                          "Hub cache and the Hub cannot be reached (offline or HF_HUB_OFFLINE=1): "
                          "run `pricer model download` while online and pass the folder") from None


def hub_file(repo: str, filename: str, revision: str | None = None, what: str = "model") -> Path:
    """Download one file of a Hub repo (or find it in the local Hub cache when offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        with hub_errors(what, repo, revision):
            return Path(hf_hub_download(repo, filename, revision=revision))
    except EntryNotFoundError:
        raise FileNotFoundError(filename) from None


def resolve_model(model: str, revision: str | None = None, allow_pickle: bool = False) -> str:
    """A local path or Hub id that `from_pretrained` understands, checked to exist."""
    if model == DEFAULT_MODEL:
        return str(default_model_dir())
    if is_local(model):
        folder = Path(model).expanduser()
        check_model_folder(folder, allow_pickle)
        return str(folder)
    config_file(model, revision)  # fails in one line when the Hub id cannot be found
    return model


def config_file(model: str, revision: str | None = None) -> Path:
    """The local config.json of a model (fetched alone from the Hub for a Hub id): enough to
    describe it without its weights."""
    if model == DEFAULT_MODEL:
        return default_model_dir() / "config.json"
    if is_local(model):
        path = Path(model).expanduser() / "config.json"
        if not path.is_file():
            raise PricerError(f"{model}: no config.json, so not a transformers model folder")
        return path
    try:
        return hub_file(model, "config.json", revision)
    except FileNotFoundError:
        raise PricerError(f"Hub repo '{model}' has no config.json: not a transformers model") from None


def resolve_adapter(adapter: str, revision: str | None = None, allow_pickle: bool = False) -> Path:
    """The local folder of a LoRA adapter (downloaded into the Hub cache when it is a Hub id)."""
    if is_local(adapter):
        folder = Path(adapter).expanduser()
        if not (folder / ADAPTER_CONFIG).exists():
            raise PricerError(f"{adapter}: no {ADAPTER_CONFIG}, so not a PEFT adapter folder")
    else:
        folder = hub_file(adapter, ADAPTER_CONFIG, revision, what="adapter").parent
        try:
            hub_file(adapter, ADAPTER_WEIGHTS, revision, what="adapter")
        except FileNotFoundError:
            if not allow_pickle:
                raise PricerError(f"adapter '{adapter}' has no {ADAPTER_WEIGHTS}; "
                                  f"{PICKLE_HINT}") from None
            hub_file(adapter, "adapter_model.bin", revision, what="adapter")
        try:  # how a pricer run trained it (its prompt format); adapters from elsewhere lack it
            hub_file(adapter, CONFIG, revision, what="adapter")
        except (FileNotFoundError, PricerError):  # not in the repo, or offline and not cached
            pass
    if (folder / ADAPTER_WEIGHTS).exists():
        return folder
    if (folder / "adapter_model.bin").exists():
        if allow_pickle:
            return folder
        raise PricerError(f"{adapter}: only a pickle adapter (adapter_model.bin); {PICKLE_HINT}")
    raise PricerError(f"{adapter}: no {ADAPTER_WEIGHTS} in the adapter folder")


def friendly(error: Exception, model: str) -> PricerError:
    """A transformers loading error (OSError/ValueError: missing or bad files) as one line."""
    text = str(error)
    if "trust_remote_code" in text:
        return PricerError(f"{model} ships its own Python code, which is not run by default; read it, "
                           "then pass --trust-remote-code if you trust it")
    if "does not recognize this architecture" in text or "Unrecognized model" in text:
        return PricerError(f"{model}: transformers {_version()} does not know this architecture")
    if "tokenizer" in text.lower():
        return PricerError(f"{model}: no usable tokenizer (tokenizer.json) in this model")
    return PricerError(f"{model}: {text.strip().splitlines()[0]}")


def _version() -> str:
    import transformers

    return transformers.__version__


def load_tokenizer(model: str, revision: str | None = None, trust_remote_code: bool = False):
    """The model's tokenizer, with a pad token (the eos token when it has none)."""
    from transformers import AutoTokenizer

    if model == DEFAULT_MODEL:
        path = str(default_model_dir())
    elif is_local(model) and not Path(model).expanduser().is_dir():
        raise PricerError(f"{model}: no such model folder")
    else:  # a folder (weights not needed for a tokenizer) or a Hub id
        path = str(Path(model).expanduser()) if is_local(model) else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision,
                                                  trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise friendly(e, model) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(model: str, precision: str = "auto", device: str | None = None, *,
              revision: str | None = None, allow_pickle: bool = False,
              trust_remote_code: bool = False):
    """The base model alone, on `device`, at `precision` (see module docstring)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    settled = resolve_precision(precision, device, purpose="inference")
    precision, device = settled.name, settled.device
    kwargs: dict = {"revision": revision, "trust_remote_code": trust_remote_code,
                    "use_safetensors": None if allow_pickle else True, "dtype": settled.dtype}
    if settled.quantized:
        # Layers that stay unquantised (embeddings, norms, lm_head) are kept in the compute dtype,
        # bf16 as in the reference (that is what makes 8B take 9.1 GB in 8-bit and 5.59 GB in 4-bit).
        kwargs |= {"quantization_config": quantization_config(precision, device),
                   "device_map": {"": device}}
    path = resolve_model(model, revision, allow_pickle)
    hf_logging.disable_progress_bar()  # pricer reports its own progress: no "Loading weights" bar
    try:
        loaded = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        if "safetensors" in str(e) and not allow_pickle:
            raise PricerError(f"{model}: no safetensors weights; {PICKLE_HINT}") from None
        raise friendly(e, model) from None
    if not settled.quantized:
        loaded.to(device)
    return loaded


def attach_adapter(model, adapter: str, revision: str | None = None, allow_pickle: bool = False,
                   trainable: bool = False):
    """`model` wrapped in a PEFT model with the LoRA adapter loaded on top."""
    from peft import PeftModel

    folder = resolve_adapter(adapter, revision, allow_pickle)
    try:
        return PeftModel.from_pretrained(model, folder, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as e:
        if "size mismatch" not in str(e) and "not found in the base model" not in str(e):
            raise
        base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
        raise PricerError(f"adapter {adapter} does not fit this base model (it was trained on "
                          f"'{base}'): load it with that base") from None


def detach_adapter(model, merge: bool = False):
    """The base model back without its LoRA layers (`merge=True` folds them into the weights)."""
    return model.merge_and_unload() if merge else model.unload()


def load_model(model: str, adapter: str | None = None, precision: str = "auto",
               device: str | None = None, *, revision: str | None = None,
               adapter_revision: str | None = None, allow_pickle: bool = False,
               trust_remote_code: bool = False, for_training: bool = False):
    """(model, tokenizer) with the adapter attached when given.

    In eval mode, unless `for_training=True`: then the model stays in train mode, a given adapter
    is trainable, and 4-bit layers are kept out of bitsandbytes' CPU repacking (see quant.py).
    Always load a fresh model for training rather than reusing one that has predicted.
    """
    if adapter:  # a bad adapter fails in one line before the base model is loaded
        resolve_adapter(adapter, adapter_revision, allow_pickle)
    loaded = load_base(model, precision, device, revision=revision, allow_pickle=allow_pickle,
                       trust_remote_code=trust_remote_code)
    if for_training and precision_of(loaded) == "4bit":
        keep_trainable_4bit(loaded)
    if adapter:
        loaded = attach_adapter(loaded, adapter, adapter_revision, allow_pickle, for_training)
    if not for_training:
        loaded.eval()
    return loaded, load_tokenizer(model, revision, trust_remote_code)


def bf16_twin(model):
    """A bf16 copy of the fp32 causal LM `model` (a PEFT model too) that decides fast, for the
    "checked" precision: its decoder layers in bf16, its final norm and lm_head in fp32 (the
    lm_head shares `model`'s weights: no second copy), so that the logits it ranks carry fp32's
    resolution (bf16 logits tie at a step of 0.125 near 20) and only the layers' rounding
    differs. Written here because transformers keeps one dtype per model."""
    import copy

    import torch

    twin = copy.deepcopy(model).to(torch.bfloat16)
    base = twin.get_base_model() if hasattr(twin, "get_base_model") else twin
    weight = model.get_output_embeddings().weight  # fp32, tied to the input embeddings or not
    lm_head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device)
    lm_head.weight = weight
    base.set_output_embeddings(lm_head)
    norm = base.get_decoder().norm.float()
    as_fp32 = lambda module, args: (args[0].float(), *args[1:])  # noqa: E731
    norm.register_forward_pre_hook(as_fp32)
    lm_head.register_forward_pre_hook(as_fp32)
    return twin.eval()


def load_run_weights(model, folder) -> None:
    """Load a run's (or checkpoint's) adapter, and its head for a HeadModel, into `model` (a
    PEFT model or HeadModel built with the same LoRA settings): `init_from`, and resuming."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from pricer.models.head import HeadModel

    weights = Run(folder).adapter_weights()
    is_head = isinstance(model, HeadModel)
    try:
        loaded = set_peft_model_state_dict(model.lm if is_head else model, load_file(str(weights)))
        if is_head:
            model.load_head(folder)
    except RuntimeError as e:  # a tensor of another shape: another rank, width or pooling
        raise PricerError(f"{folder}: its weights do not fit this run's settings "
                          f"({str(e).splitlines()[-1].strip()[:160]})") from None
    if loaded.unexpected_keys:  # other layers or target modules
        raise PricerError(f"{folder}: {len(loaded.unexpected_keys)} of its adapter's tensors have "
                          "no place in this run (other target_modules or lora_layers?)")
