"""Save a curated data set the way every other stage reads it, atomically; load it back; push it.

On disk: a `datasets.DatasetDict` (save_to_disk) with splits train/test and columns
`text` (train: full training prompt; test: test prompt), `price` (float), `category` (str or None),
and `report.json` beside it. The folder is written under a hidden staging name and renamed into
place at the end, so an interrupted run never leaves a complete-looking folder.
"""

import json
import shutil
import tempfile
from pathlib import Path

from pricer.data.prompts import test_prompt, train_prompt
from pricer.errors import PricerError


def features():
    from datasets import Features, Value

    return Features({"text": Value("string"), "price": Value("float64"),
                     "category": Value("string")})


def to_dataset_dict(train: list, test: list, question: str):
    """Curated items (objects with .text, .price, .category) -> DatasetDict of prompts."""
    from datasets import Dataset, DatasetDict

    def split(items, prompt):
        return Dataset.from_dict({
            "text": [prompt(i) for i in items],
            "price": [float(i.price) for i in items],
            "category": [i.category for i in items],
        }, features=features())

    return DatasetDict({
        "train": split(train, lambda i: train_prompt(i.text, i.price, question)),
        "test": split(test, lambda i: test_prompt(i.text, question)),
    })


def _is_ours_or_empty(path: Path) -> bool:
    return not any(path.iterdir()) or (path / "dataset_dict.json").exists()


def check_out(out_dir: str | Path) -> Path:
    """The resolved output folder; refuse one that holds something else than a data set."""
    out = Path(out_dir).resolve()
    if out.exists() and (not out.is_dir() or not _is_ours_or_empty(out)):
        raise PricerError(f"{out}: exists and is not a pricer data set; choose another --out")
    return out


def save(data, out_dir: str | Path, report: dict) -> Path:
    """Write `data` and `report.json` to `out_dir` atomically (staging folder, then rename).

    An existing `out_dir` is replaced only if it is empty or a previous data set."""
    out = check_out(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        from datasets import utils as bars

        was_quiet = bars.are_progress_bars_disabled()
        bars.disable_progress_bars()  # our own progress/report is enough
        empty = {k: 1 for k in data if not len(data[k])}  # 0 shards would not load back
        data.save_to_disk(str(staging), num_shards=empty)
        if not was_quiet:
            bars.enable_progress_bars()
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{staging.name[-8:]}")
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
    return load_from_disk(str(path))


def read_report(path: str | Path) -> dict:
    return json.loads((Path(path) / "report.json").read_text())


def push_to_hub(data, repo: str, private: bool = True) -> str:
    """Upload the DatasetDict to the Hugging Face Hub (needs a token and a network)."""
    try:
        data.push_to_hub(repo, private=private)
    except Exception as e:  # network, auth: one clear line for the user
        raise PricerError(f"push to {repo} failed: {type(e).__name__}: {e}") from None
    return f"https://huggingface.co/datasets/{repo}"
