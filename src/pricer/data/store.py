"""Save a curated data set the way every other stage reads it, atomically; load it back; push it.

On disk: a `datasets.DatasetDict` (save_to_disk) with splits train/test and columns
`text` (train: full training prompt; test: test prompt), `price` (float), `category` (str or None),
and `report.json` beside it. The folder is written under a hidden staging name and renamed into
place at the end, so an interrupted run never leaves a complete-looking folder. `save` writes a
DatasetDict; `save_items` the same folder from items that come one by one, batch by batch.

What may be replaced: a missing or empty folder, or (with `overwrite=True`) a folder that holds
exactly a data set pricer saved. A folder with anything else in it is never replaced, whatever
the flags: pricer deletes nothing it did not write.
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from pricer.data.prompts import cut_to_tokens, prompt_format
from pricer.errors import PricerError, reading, writing
from pricer.paths import process_alive

# What `save` writes: OUT/{dataset_dict.json, report.json, train/, test/}, and in each split
# the files of datasets' save_to_disk (and the cache files datasets may add beside them).
TOP_FILES = {"dataset_dict.json", "report.json", "train", "test"}
SPLIT_FILE = re.compile(r"(data-\d{5}-of-\d{5}|cache-[0-9a-f_]+)\.arrow|dataset_info\.json|"
                        r"state\.json")


def features():
    from datasets import Features, Value

    return Features({"text": Value("string"), "price": Value("float64"),
                     "category": Value("string")})


def to_dataset_dict(train: list, test: list, fmt: str = "2024", tokenizer=None):
    """Curated items (objects with .text, .price, .category) -> DatasetDict of prompts in prompt
    format `fmt`; with a tokenizer, a format with a token limit cuts each description to it."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({
        name: Dataset.from_dict(columns(items, name, fmt, tokenizer), features=features())
        for name, items in (("train", train), ("test", test))})


def columns(items: list, split: str, fmt: str = "2024", tokenizer=None) -> dict:
    """The columns of `split` ("train": prompts with the price; "test": prompts that end in
    `Price is $`) for these items."""
    chosen = prompt_format(fmt)
    texts = [i.text for i in items]
    if tokenizer is not None and chosen.description_tokens and texts:
        texts = cut_to_tokens(texts, chosen.description_tokens, tokenizer)
    if split == "train":
        prompts = [chosen.train_prompt(t, i.price) for t, i in zip(texts, items)]
    else:
        prompts = [chosen.test_prompt(t) for t in texts]
    return {"text": prompts, "price": [float(i.price) for i in items],
            "category": [i.category for i in items]}


def is_saved_dataset(path: str | Path) -> bool:
    """True if `path` holds a data set `save` wrote and nothing else."""
    path = Path(path)
    if not (path / "dataset_dict.json").is_file() or not (path / "report.json").is_file():
        return False
    for entry in path.iterdir():
        if entry.name not in TOP_FILES:
            return False
        if entry.name in ("train", "test"):
            if not entry.is_dir() or entry.is_symlink():
                return False
            if not all(f.is_file() and SPLIT_FILE.fullmatch(f.name) for f in entry.iterdir()):
                return False
    return True


def check_out(out_dir: str | Path, overwrite: bool = False) -> Path:
    """The resolved output folder, checked before any long work: missing (its parent must be
    writable), empty, or (with `overwrite`) a data set pricer saved. Cleans what an interrupted
    earlier run left beside it."""
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise PricerError(f"{out}: exists and is a file; choose another --out")
    clean_stale(out)
    if out.exists() and any(out.iterdir()):
        if not is_saved_dataset(out):
            raise PricerError(f"{out}: exists and holds files pricer did not write; choose "
                              "another --out (pricer never deletes them)")
        if not overwrite:
            raise PricerError(f"{out}: already holds a data set; pass --overwrite to replace it, "
                              "or choose another --out")
    try:  # can we write there? (a staging folder is made there at the end)
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-{os.getpid()}-")).rmdir()
    except OSError as e:
        raise PricerError(f"{out}: cannot write there ({e.strerror or e})") from None
    return out


def clean_stale(out: Path) -> list[Path]:
    """Remove the hidden `.OUT.staging-PID-*` / `.OUT.old-PID-*` folders of earlier runs whose
    process is gone (killed mid-save). If such a run died after moving the old data set aside and
    before renaming the new one into place, the old one is put back first. Returns what went."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{out.name}.") + r"(staging|old)-(\d+)-.*")
    stale = []
    for entry in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not process_alive(int(match[2])):
            stale.append((match[1], entry))
    for kind, entry in stale:
        if kind == "old" and not out.exists() and is_saved_dataset(entry):
            entry.rename(out)
    gone = []
    for _, entry in stale:
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
            gone.append(entry)
    return gone


def save(data, out_dir: str | Path, report: dict, overwrite: bool = False) -> Path:
    """Write the DatasetDict `data` and `report.json` to `out_dir` atomically (staging folder,
    then rename). An existing `out_dir` is replaced only if it is empty, or a saved data set and
    `overwrite`."""
    empty = {k: 1 for k in data if not len(data[k])}  # 0 shards would not load back
    return _staged(out_dir, report, overwrite,
                   lambda staging: data.save_to_disk(str(staging), num_shards=empty))


def save_items(train, test, out_dir: str | Path, report: dict, fmt: str = "2024", tokenizer=None,
               overwrite: bool = False, batch: int = 10_000) -> Path:
    """`save(to_dataset_dict(train, test, ...))` for items that come one by one (e.g. read back
    from a `spool`): each split is written `batch` items at a time, so memory does not grow with
    the data set. Same folder, same rows as `save`."""
    from datasets.arrow_writer import ArrowWriter

    def write(staging: Path) -> None:
        to_dataset_dict([], [], fmt).save_to_disk(str(staging), num_shards={"train": 1, "test": 1})
        for name, items in (("train", train), ("test", test)):  # the layout made, now the rows
            path = staging / name / "data-00000-of-00001.arrow"
            with ArrowWriter(path=str(path), features=features()) as writer:
                for part in _batches(items, batch):
                    writer.write_batch(columns(part, name, fmt, tokenizer))
                writer.finalize()

    return _staged(out_dir, report, overwrite, write)


def _batches(items, size: int):
    part = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _staged(out_dir: str | Path, report: dict, overwrite: bool, write) -> Path:
    """Run `write(staging)` in a hidden staging folder beside `out_dir`, add `report.json`, and
    rename the folder into place only when all is written: an interrupted run leaves no
    complete-looking folder, and an older data set there intact."""
    out = check_out(out_dir, overwrite)
    with writing(out):
        staging = Path(tempfile.mkdtemp(dir=out.parent,
                                        prefix=f".{out.name}.staging-{os.getpid()}-"))
    try:
        from datasets import utils as bars

        was_quiet = bars.are_progress_bars_disabled()
        bars.disable_progress_bars()  # our own progress/report is enough
        with writing(out):
            write(staging)
            (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if not was_quiet:
            bars.enable_progress_bars()
        with writing(out):
            if out.exists():
                old = out.with_name(f".{out.name}.old-{os.getpid()}-{staging.name[-8:]}")
                out.rename(old)
                staging.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def load(path: str | Path):
    """The DatasetDict saved by `save` (train/test)."""
    from datasets import load_from_disk

    path = Path(path)
    if not (path / "dataset_dict.json").exists():
        raise PricerError(f"{path}: not a saved data set (run `pricer data` first)")
    with reading(path):
        return load_from_disk(str(path))


def read_report(path: str | Path) -> dict:
    with reading(Path(path) / "report.json"):
        return json.loads((Path(path) / "report.json").read_text())


def price_bounds(source: str | Path | None = None) -> tuple[float, float]:
    """(min_price, max_price) that curated `source`: a saved data set's own settings (its
    report.json), else the reference's (a plain file, an older or hand-made report)."""
    from pricer.data.curate import REFERENCE

    if source is not None and (Path(source) / "report.json").is_file():
        try:
            settings = read_report(source).get("settings") or {}
            return float(settings["min_price"]), float(settings["max_price"])
        except (PricerError, KeyError, TypeError, ValueError, AttributeError):
            pass
    return REFERENCE.min_price, REFERENCE.max_price


def push_to_hub(data, repo: str, private: bool = True) -> str:
    """Upload the DatasetDict to the Hugging Face Hub (needs a token and a network)."""
    try:
        data.push_to_hub(repo, private=private)
    except Exception as e:  # network, auth: one clear line for the user
        raise PricerError(f"push to {repo} failed: {type(e).__name__}: {e}") from None
    return f"https://huggingface.co/datasets/{repo}"
