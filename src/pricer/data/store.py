"""Save a curated data set the way every other stage reads it, atomically; load it back; push it.

On disk: a `datasets.DatasetDict` (save_to_disk) with splits train/test and columns
`text` (train: full training prompt; test: test prompt), `price` (float), `category` (str or None),
and `report.json` beside it. The folder is written under a hidden staging name and renamed into
place at the end, so an interrupted run never leaves a complete-looking folder.

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

    chosen = prompt_format(fmt)

    def texts(items):
        texts = [i.text for i in items]
        if tokenizer is not None and chosen.description_tokens and texts:
            return cut_to_tokens(texts, chosen.description_tokens, tokenizer)
        return texts

    def split(items, prompts):
        return Dataset.from_dict({
            "text": prompts,
            "price": [float(i.price) for i in items],
            "category": [i.category for i in items],
        }, features=features())

    return DatasetDict({
        "train": split(train, [chosen.train_prompt(t, i.price) for t, i in zip(texts(train), train)]),
        "test": split(test, [chosen.test_prompt(t) for t in texts(test)]),
    })


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


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if match and entry.is_dir() and not entry.is_symlink() and not _alive(int(match[2])):
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
    """Write `data` and `report.json` to `out_dir` atomically (staging folder, then rename).

    An existing `out_dir` is replaced only if it is empty, or a saved data set and `overwrite`."""
    out = check_out(out_dir, overwrite)
    with writing(out):
        staging = Path(tempfile.mkdtemp(dir=out.parent,
                                        prefix=f".{out.name}.staging-{os.getpid()}-"))
    try:
        from datasets import utils as bars

        was_quiet = bars.are_progress_bars_disabled()
        bars.disable_progress_bars()  # our own progress/report is enough
        empty = {k: 1 for k in data if not len(data[k])}  # 0 shards would not load back
        with writing(out):
            data.save_to_disk(str(staging), num_shards=empty)
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
