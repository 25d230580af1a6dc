"""Frozen bottom layers computed once (issue 19, part 3), for runs with `lora_layers`.

A run with `lora_layers` trains LoRA on the top `lora_layers` of the layers it runs (a head run,
`configs/amazon-head.yaml`: 5 of 12; the generation path, `configs/amazon-ntl.yaml`: 8 of 30), so
the embeddings and the bottom layers never change: their output for an item is the same at every
step, every epoch and every `--init-from` run. This module computes it once per training item,
stores it memory-mapped, and gives the trainer what reads it back and runs only the trainable
layers:

    prompt ids -> [embeddings, layers 0..F-1: computed once, cached] -> layers F..N-1 (LoRA)
               -> the regression head (CachedHeadModel), or the LM head at the price tokens
                  (FrozenDecoder, read by train/fast.py's FastSFTTrainer)

What is stored, in `pricer.paths.cache_dir()/frozen/<model>-<key hash>/`:
- `hidden.npy` [states, tokens of all items, hidden size]: the hidden state entering layer F (and
  the output of any frozen layer the head reads, with `head_layers` > the trained layers + 1),
  items one after the other without padding, in the dtype the decoder's residual stream has (fp32
  weights under bf16 autocast: fp32; nothing is rounded for storage);
- `index.npy` [items, 2]: each item's first token and length; `meta.json`: the key (its
  modification time is the cache's last use: a cache unused for KEEP_DAYS is removed when another
  is built; `rm -r ~/.cache/pricer/frozen` at any time is safe).

The key (`cache_key`): model name, sha256 of the frozen weights (embeddings and layers 0..F-1) and
of the model config, the number of frozen layers and the states stored, precision (weight dtype,
autocast dtype, device type, attention implementation, torch and transformers versions), the data
fingerprint (sha256 of every item's token ids in order, so the tokenizer, the data and their
order), max_length and prompt_format. A cache written under another key is never read; a cache
is written into `<name>.part-<host>-<pid>/` and renamed to `<name>/` only once complete, so a
killed write is never taken as complete (its leftover folder is removed by the next build once
its process is gone).

`frozen_cache: auto` (the default) uses the cache only where it is exact: layers 0..F-1 and the
embeddings hold no trainable weight and no dropout, the weights are not 4/8-bit, no gradient
checkpointing, one process (the generation path: also the fast path); and a check on the first
items finds the hidden states the head or the LM head reads the same (to rounding) through the
cache as through the whole decoder. `true` requires it (one error line saying why not), `false`
computes every layer at every step as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pricer.errors import PricerError
from pricer.models.head import HeadModel
from pricer.models.split import bottom_fingerprint, bottom_states, top
from pricer.paths import process_alive

FORMAT = "pricer-frozen/1"
BUILD_BATCH = 32       # items per forward pass when the cache is built (no gradients)
CHECK_ITEMS = 4        # items the exactness check runs both ways
KEEP_DAYS = 14         # a cache nobody read for this long is removed when another is built


def cache_root() -> Path:
    from pricer.paths import cache_dir

    return cache_dir() / "frozen"


def lm_of(model):
    """The causal LM (maybe a PeftModel) of a HeadModel, or the model itself."""
    return model.lm if isinstance(model, HeadModel) else model


def decoder_of(model):
    lm = lm_of(model)
    return lm.get_base_model().get_decoder() if hasattr(lm, "get_base_model") else lm.get_decoder()


@dataclass
class FrozenCache:
    path: Path
    first: int             # F: the frozen layers are 0..F-1; hidden state F enters layer F
    states: list[int]      # hidden-state indices stored (as in output_hidden_states), F last
    index: np.ndarray      # [items, 2]: first token, length
    hidden: np.ndarray     # memory-mapped [states, tokens, hidden size]
    dtype: torch.dtype
    built_s: float | None  # seconds to build it here, None when read from an earlier run

    def batch(self, rows, width: int, device) -> list[torch.Tensor]:
        """The stored states of `rows`, right-padded with zeros to `width`: one [rows, width,
        hidden] tensor per stored state."""
        out = np.zeros((len(self.states), len(rows), width, self.hidden.shape[2]), self.hidden.dtype)
        for i, row in enumerate(rows):
            start, length = self.index[int(row)]
            out[:, i, :length] = self.hidden[:, start:start + length]
        tensor = torch.from_numpy(out)
        if self.dtype == torch.bfloat16:
            tensor = tensor.view(torch.bfloat16)
        return list(tensor.to(device).unbind(0))


class CachedHeadModel(HeadModel):
    """A HeadModel (the same decoder, LoRA and head modules) that reads the frozen layers' output
    of training items from a FrozenCache: a batch carries `rows`, the items' dataset rows. Saving,
    loading and the optimiser's parameters are HeadModel's."""

    def __init__(self, model: HeadModel, cache: FrozenCache):
        super().__init__(model.lm, model.head)
        self.cache = cache

    def forward(self, input_ids, attention_mask, labels=None, weights=None, rows=None):
        if rows is None:
            return super().forward(input_ids, attention_mask, labels, weights)
        return self.score(self.cached_hidden_states(rows, attention_mask), attention_mask,
                          labels, weights)

    def cached_hidden_states(self, rows, attention_mask) -> tuple:
        cache = self.cache
        lengths = torch.as_tensor(cache.index[rows.cpu().numpy(), 1])
        if not torch.equal(lengths, attention_mask.sum(1).cpu()):
            raise PricerError(f"{cache.path}: the cached items do not match this batch's lengths")
        stored = cache.batch(rows.tolist(), attention_mask.shape[1], attention_mask.device)
        out = top(decoder_of(self), cache.first, stored[-1], attention_mask,
                  output_hidden_states=True)
        return (*stored[:-1], *out.hidden_states)  # = the whole decoder's [states[0]:]


class FrozenDecoder:
    """The generation path's decoder output for a batch of training items, read from a
    FrozenCache: the stored state entering layer F, then layers F..N-1 (LoRA) and the final
    norm. Items are found by their token ids (the SFT collator pads on the right)."""

    def __init__(self, model, cache: FrozenCache, ids):
        self.model = model
        self.cache = cache
        self.rows = {tuple(row): i for i, row in enumerate(ids)}

    def rows_of(self, input_ids, attention_mask) -> list[int]:
        lengths = attention_mask.sum(1)
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        if not bool((attention_mask.bool() == (positions < lengths[:, None])).all()):
            raise PricerError(f"{self.cache.path}: a batch not padded on the right")
        try:
            return [self.rows[tuple(ids[:n].tolist())] for ids, n in zip(input_ids, lengths.tolist())]
        except KeyError:
            raise PricerError(f"{self.cache.path}: a batch item that is not in the cache") from None

    def last_hidden_state(self, input_ids, attention_mask, position_ids=None):
        stored = self.cache.batch(self.rows_of(input_ids, attention_mask), attention_mask.shape[1],
                                  attention_mask.device)[-1]
        return top(decoder_of(self.model), self.cache.first, stored, attention_mask,
                   position_ids).last_hidden_state


class RowsCollator:
    """The head's collator, plus each item's dataset row (`rows`), where its cached states are."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, items: list[dict]) -> dict:
        return self.collator(items) | {"rows": torch.tensor([i["row"] for i in items])}


# ---- when it applies ------------------------------------------------------------------------

def plan(config, model, args) -> tuple[int, list[int]] | str:
    """(F, the hidden-state indices to store) where the cache is exact for this run (`model`: a
    HeadModel, or the generation path's LM), else why not."""
    from pricer.models.quant import QUANTIZED

    if not config.lora_layers:
        return "every layer is trained (no lora_layers)"
    decoder = decoder_of(model)
    layers = len(decoder.layers)
    first = layers - config.lora_layers
    if first < 1:
        return "every layer is trained (no lora_layers below the layers run)"
    reads = model.head.config.head_layers if isinstance(model, HeadModel) else 1
    lowest = layers + 1 - reads  # the lowest hidden state the head (or the LM head) reads
    if lowest < 1:
        return "the head reads the embeddings"
    frozen = [decoder.get_input_embeddings(), *decoder.layers[:first]]
    if any(p.requires_grad for m in frozen for p in m.parameters()):
        return f"a layer below layer {first} has trainable weights"
    if config.precision in QUANTIZED:
        return f"{config.precision} weights"
    text = lm_of(model).config.get_text_config().to_dict()
    dropout = [k for k, v in text.items() if ("dropout" in k or "pdrop" in k)
               and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    dropout += [n for m in frozen for n, d in m.named_modules() if isinstance(d, nn.Dropout) and d.p > 0]
    if dropout:
        return f"dropout in the frozen layers ({', '.join(dropout)})"
    if config.gradient_checkpointing is True:
        return "gradient checkpointing"
    if getattr(args, "world_size", 1) > 1:
        return "more than one process"
    return first, list(range(min(lowest, first), first + 1))


def autocast_of(args) -> torch.dtype | None:
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


# ---- the key --------------------------------------------------------------------------------

def cache_key(model, first: int, states: list[int], ids, *, model_name: str,
              max_length: int, prompt_format: str, autocast: torch.dtype | None) -> dict:
    """Everything the stored states depend on (see the module's docstring)."""
    import transformers

    decoder = decoder_of(model)
    data = hashlib.sha256()
    for row in ids:
        data.update(np.asarray(row, dtype=np.int64).tobytes() + b"\xff" * 8)
    text = lm_of(model).config.get_text_config()
    parameter = next(decoder.parameters())
    return {"format": FORMAT, "model": str(model_name), "frozen_weights": bottom_fingerprint(decoder, first),
            "model_config": hashlib.sha256(text.to_json_string(use_diff=False).encode()).hexdigest(),
            "frozen_layers": first, "states": states, "weights_dtype": str(parameter.dtype),
            "autocast": str(autocast) if autocast is not None else None,
            "device": parameter.device.type,
            "attention": str(getattr(text, "_attn_implementation", None)),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "items": len(ids), "tokens": int(sum(len(r) for r in ids)), "data": data.hexdigest(),
            "max_length": max_length, "prompt_format": prompt_format}


def folder_name(key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(key["model"]).name)[:40]
    return f"{slug}-{digest}"


# ---- read, or build once --------------------------------------------------------------------

def load(folder: Path, key: dict) -> FrozenCache | None:
    """The complete cache in `folder` if it was written under exactly `key`, else None."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("key") != key:
            return None
        index = np.load(folder / "index.npy")
        hidden = np.load(folder / "hidden.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    tokens = int(index[:, 1].sum()) if len(index) else 0
    if index.shape != (key["items"], 2) or hidden.shape[:2] != (len(key["states"]), tokens) \
            or tokens != key["tokens"]:
        return None
    return FrozenCache(folder, key["frozen_layers"], key["states"], index, hidden,
                       getattr(torch, meta["dtype"]), None)


def _remove_dead_parts(root: Path, name: str) -> None:
    """Leftovers of builds killed on this machine (their process is gone)."""
    host = socket.gethostname()
    for part in root.glob(f"{name}.part-*"):
        owner, _, pid = part.name.rpartition("-")
        if owner.endswith(f".part-{host}") and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(part, ignore_errors=True)


def _remove_unused(root: Path) -> None:
    """Complete caches nobody has read for KEEP_DAYS (each is rebuilt when needed again)."""
    old = time.time() - KEEP_DAYS * 86400
    for meta in root.glob("*/meta.json"):
        try:
            if meta.stat().st_mtime < old:
                shutil.rmtree(meta.parent, ignore_errors=True)
        except OSError:
            pass


def _write_rows(hidden: np.ndarray, grabbed: list[torch.Tensor], chunk, index) -> None:
    for s, states in enumerate(grabbed):
        values = states.detach().cpu()
        values = (values.view(torch.int16).numpy().view(np.uint16) if values.dtype == torch.bfloat16
                  else values.numpy())
        for i, row in enumerate(chunk):
            start, length = index[row]
            hidden[s, start:start + length] = values[i, :length]


def build(model, first: int, states: list[int], ids, pad_id: int, key: dict,
          folder: Path, autocast: torch.dtype | None) -> FrozenCache:
    """Compute the stored states of every item (no gradients, the training's autocast) into
    `<folder>.part-<host>-<pid>`, then rename it to `folder`."""
    from pricer.models.head import pad_right

    part = folder.with_name(f"{folder.name}.part-{socket.gethostname()}-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    started = time.perf_counter()
    decoder = decoder_of(model)
    device = next(decoder.parameters()).device
    lengths = np.array([len(r) for r in ids], dtype=np.int64)
    index = np.stack([np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths], axis=1)
    hidden, dtype = None, None
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(device, autocast):
            for at in range(0, len(order), BUILD_BATCH):
                chunk = order[at:at + BUILD_BATCH].tolist()
                batch, mask = pad_right([ids[r] for r in chunk], pad_id)
                grabbed = bottom_states(decoder, first, states, batch.to(device), mask.to(device))
                if hidden is None:
                    dtype = grabbed[0].dtype
                    stored = np.uint16 if dtype == torch.bfloat16 else torch.empty(0, dtype=dtype).numpy().dtype
                    hidden = np.lib.format.open_memmap(
                        part / "hidden.npy", mode="w+", dtype=stored,
                        shape=(len(states), int(lengths.sum()), grabbed[0].shape[-1]))
                _write_rows(hidden, grabbed, chunk, index)
    finally:
        model.train(training)
    hidden.flush()
    del hidden
    np.save(part / "index.npy", index)
    (part / "meta.json").write_text(json.dumps({"key": key, "dtype": str(dtype).split(".")[-1]}, indent=1))
    try:
        os.rename(part, folder)  # complete: from now on it is read
    except OSError:  # another process finished the same cache first
        shutil.rmtree(part, ignore_errors=True)
    cache = load(folder, key)
    if cache is None:
        raise PricerError(f"{folder}: the frozen-layer cache just written does not read back")
    cache.built_s = time.perf_counter() - started
    return cache


def open_cache(model, first: int, states: list[int], ids, pad_id: int, key: dict,
               root: Path | None = None) -> FrozenCache:
    """The cache of `key` under `root` (default cache_root()): read when complete, else built."""
    root = Path(root) if root is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / folder_name(key)
    _remove_dead_parts(root, folder.name)
    cache = load(folder, key)
    if cache is not None:
        os.utime(folder / "meta.json")  # last used: now
        return cache
    _remove_unused(root)
    if folder.exists():  # not a complete cache of this key: never read it
        shutil.rmtree(folder)
    autocast = getattr(torch, key["autocast"].split(".")[-1]) if key["autocast"] else None
    return build(model, first, states, ids, pad_id, key, folder, autocast)


def _max_difference(a: tuple, b: tuple, mask: torch.Tensor) -> float:
    """Largest difference of two hidden-state tuples at real tokens, relative to the largest value."""
    keep = mask.bool()
    worst = 0.0
    for x, y in zip(a, b):
        x, y = x[keep].float(), y[keep].float()
        worst = max(worst, float((x - y).abs().max() / x.abs().max().clamp(min=1e-12)))
    return worst


def check(model, batch: dict, through, reads: int, autocast) -> float:
    """How far the last `reads` hidden states through the cache (`through(input_ids,
    attention_mask)`, what the head or the LM head reads) are from the whole decoder's."""
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(device, autocast):
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            whole = decoder_of(model)(input_ids=ids, attention_mask=mask, use_cache=False,
                                      output_hidden_states=True).hidden_states[-reads:]
            cached = through(ids, mask)
    finally:
        model.train(training)
    return _max_difference(whole, cached, mask)


# ---- the entry points (train/head.py, train/run.py) ------------------------------------------

def _planned(config, model, args, items: int, why_not: str | None = None):
    """((F, states), None) where the cache is to be used, else (None, the console's line: None
    when nothing is frozen); `frozen_cache: true` where it cannot be is one error line. `auto`
    skips it where --max-steps trains on fewer items than the cache would compute."""
    setting = getattr(config, "frozen_cache", "auto")
    planned = why_not if why_not and config.lora_layers else plan(config, model, args)
    seen = max(args.max_steps, 0) * args.per_device_train_batch_size * args.gradient_accumulation_steps
    if setting == "auto" and 0 < seen < items and not isinstance(planned, str):
        return None, (f"frozen layers computed at every step (frozen_cache off: max_steps "
                      f"{args.max_steps} trains on {seen:,} of the {items:,} items)")
    if isinstance(planned, str) or setting is False:
        if setting is True:
            raise PricerError(f"frozen_cache: not exact for this run ({planned}); use "
                              "--frozen-cache auto or false")
        if isinstance(planned, str):
            return None, None if planned.startswith("every layer") else \
                f"frozen layers computed at every step (frozen_cache off: {planned})"
        return None, f"frozen layers 0-{planned[0] - 1} computed at every step (frozen_cache false)"
    return planned, None


def _open(config, model, first: int, states: list[int], ids, pad_id: int, args, root):
    key = cache_key(model, first, states, ids, model_name=config.model,
                    max_length=config.max_length, prompt_format=config.prompt_format,
                    autocast=autocast_of(args))
    tolerance = 1e-4 if autocast_of(args) is None and key["weights_dtype"] == "torch.float32" else 5e-2
    return open_cache(model, first, states, ids, pad_id, key, root), tolerance


def _verdict(config, difference: float, tolerance: float, cache: FrozenCache, items: int):
    """(used, the console's line) after the exactness check."""
    if difference > tolerance:
        if getattr(config, "frozen_cache", "auto") is True:
            raise PricerError(f"frozen_cache: through the cache the hidden states differ by "
                              f"{difference:.2g} (> {tolerance:g}) on this model; use "
                              "--frozen-cache false")
        return False, (f"frozen layers computed at every step (frozen_cache off: the cached path "
                       f"differs by {difference:.2g} on this model)")
    how = (f"computed once in {cache.built_s:.0f} s" if cache.built_s is not None
           else "read from an earlier run")
    return True, (f"frozen layers 0-{cache.first - 1}: output of {items} items {how}, "
                  f"memory-mapped from {cache.path}")


def use_frozen_cache(config, model: HeadModel, dataset, collator, args, pad_id: int,
                     root: Path | None = None):
    """(model, dataset, collator, note) for the HeadTrainer: with the cache where `frozen_cache`
    allows it (a CachedHeadModel, the dataset with a `row` column, a RowsCollator), else the
    arguments unchanged. `note` is one line for the console (None when nothing is frozen)."""
    planned, note = _planned(config, model, args, len(dataset))
    if planned is None:
        return model, dataset, collator, note
    ids = [list(row) for row in dataset["input_ids"]]
    cache, tolerance = _open(config, model, *planned, ids, pad_id, args, root)
    cached = CachedHeadModel(model, cache)
    dataset = dataset.add_column("row", list(range(len(dataset))))
    rows = RowsCollator(collator)
    sample = rows([dataset[i] for i in range(min(CHECK_ITEMS, len(dataset)))])
    reads = model.head.config.head_layers

    def through(_ids, mask):
        return cached.cached_hidden_states(sample["rows"], mask)[-reads:]

    difference = check(model, sample, through, reads, autocast_of(args))
    used, note = _verdict(config, difference, tolerance, cache, len(ids))
    if not used:
        return model, dataset.remove_columns("row"), collator, note
    return cached, dataset, rows, note


def use_frozen_decoder(config, trainer, fast_path: bool, root: Path | None = None) -> str | None:
    """The generation path: where `frozen_cache` allows it, `trainer.frozen` (read by
    FastSFTTrainer.compute_loss) becomes a FrozenDecoder over the trainer's training items.
    Returns one line for the console (None when nothing is frozen)."""
    model = trainer.model
    dataset = trainer.train_dataset
    planned, note = _planned(config, model, trainer.args, len(dataset),
                             None if fast_path else "the fast path is off")
    if planned is None:
        return note
    ids = [list(row) for row in dataset["input_ids"]]
    pad_id = trainer.processing_class.pad_token_id or 0
    cache, tolerance = _open(config, model, *planned, ids, pad_id, trainer.args, root)
    frozen = FrozenDecoder(model, cache, ids)
    sample = trainer.data_collator([dataset[i] for i in range(min(CHECK_ITEMS, len(dataset)))])

    def through(ids, mask):
        return (frozen.last_hidden_state(ids, mask),)

    difference = check(model, sample, through, 1, autocast_of(trainer.args))
    used, note = _verdict(config, difference, tolerance, cache, len(ids))
    if used:
        trainer.frozen = frozen
    return note
