"""Read priced items for training, evaluation and prediction, from any of the forms we accept.

A source is either a saved data set folder (`pricer data` output, a `DatasetDict` with train/test)
or a JSON Lines / CSV / Parquet file with a `text` column and (for training and evaluation) a
`price` column, like `../shared/data/amazon-pricer/test.jsonl`. Every item comes back with its
test prompt (`prompt`), its `price`, an `id` and a `category`.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from pricer.data.prompts import as_test_prompt
from pricer.errors import PricerError


@dataclass
class Item:
    id: str
    prompt: str  # the test prompt, ending in "Price is $"
    price: float | None
    category: str | None = None


def _rows_from_file(path: Path) -> list[dict]:
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in (".jsonl", ".json", ".jsonl.gz", ".json.gz"):
        import gzip

        opener = gzip.open if path.suffix == ".gz" else open
        rows = []
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise PricerError(f"{path}:{n}: not valid JSON") from None
                if not isinstance(row, dict):
                    raise PricerError(f"{path}:{n}: expected a JSON object")
                rows.append(row)
        return rows
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        return frame.to_dict(orient="records")
    raise PricerError(f"{path}: unknown file type (use .jsonl, .csv, .parquet or a saved data set)")


def _rows_from_dataset(path: Path, split: str) -> list[dict]:
    from datasets import load_from_disk

    data = load_from_disk(str(path))
    if hasattr(data, "keys"):
        if split not in data:
            raise PricerError(f"{path}: no '{split}' split (has: {', '.join(data.keys())})")
        data = data[split]
    return data.to_list()


def _price(value) -> float | None:
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) else None


def read_items(source: str | Path, split: str = "test", text_column: str = "text",
               price_column: str = "price", need_price: bool = True) -> list[Item]:
    """All items of `source` (the `split` of a saved data set), in file order."""
    path = Path(source)
    if not path.exists():
        raise PricerError(f"{path}: no such file or folder")
    rows = _rows_from_dataset(path, split) if path.is_dir() else _rows_from_file(path)
    if rows and text_column not in rows[0]:
        raise PricerError(f"{path}: no '{text_column}' column (has: {', '.join(rows[0])})")
    if need_price and rows and price_column not in rows[0]:
        raise PricerError(f"{path}: no '{price_column}' column (has: {', '.join(rows[0])})")
    items = []
    for n, row in enumerate(rows):
        text = row.get(text_column)
        items.append(Item(
            id=str(row.get("id", n)),
            prompt=as_test_prompt(text if isinstance(text, str) else ""),
            price=_price(row.get(price_column)),
            category=row.get("category"),
        ))
    return items


def fingerprint(items: list[Item]) -> str:
    """A short content hash of items (prompt and price, in order): the same whether they came from
    a JSONL file or a saved data set, so a run card and an evaluation of the same data agree."""
    h = hashlib.sha256()
    for item in items:
        h.update(f"{item.prompt}\x1f{item.price!r}\x1e".encode())
    return h.hexdigest()[:16]
