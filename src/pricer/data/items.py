"""Priced items for training and evaluation, read strictly.

A source is either a saved data set folder (`pricer data` output, a `DatasetDict` with train/test)
or a JSON Lines / CSV / Parquet file with a `text` column and (for training and evaluation) a
`price` column, like `../shared/data/amazon-pricer/test.jsonl`. Every item comes back with its
description (`text`), its `price`, an `id` and a `category`.

Strict: a row that is not valid JSON or UTF-8, a CSV row with the wrong number of fields, a text
that is not a string or a price that is not a finite number ends the reading with one PricerError
naming the file and the line (or row): training or scoring on silently mended data would be wrong.
"""

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from pricer.data import read
from pricer.data.prompts import description, test_prompt
from pricer.errors import PricerError


@dataclass
class Item:
    """One product listing: what every predictor receives (never a prompt)."""

    id: str
    text: str  # its description (title and details); a prompt of any known format is unwrapped
    price: float | None = None
    category: str | None = None

    def __post_init__(self):
        self.text = description(self.text)

    @property
    def prompt(self) -> str:
        """The reference's (2024) test prompt, ending in "Price is $": what fingerprints hash."""
        return test_prompt(self.text)


def as_items(items) -> list[Item]:
    """Items as they are; a bare string (a description, or a prompt) as an unpriced item."""
    return [x if isinstance(x, Item) else Item(str(n), x) for n, x in enumerate(items)]


def _price(value, where: str, column: str, need_price: bool) -> float | None:
    """A finite number (or a string of one, as CSV gives); missing is None unless needed."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if need_price:
            raise PricerError(f"{where}: no '{column}'")
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        price = float(value)
    except (TypeError, ValueError):
        raise PricerError(f"{where}: '{column}' is not a number ({str(value)[:40]!r})") from None
    if not math.isfinite(price):
        raise PricerError(f"{where}: '{column}' is not a finite number ({value!r})")
    return price


def read_items(source: str | Path, split: str = "test", text_column: str = "text",
               price_column: str = "price", need_price: bool = True) -> list[Item]:
    """All items of `source` (the `split` of a saved data set), in file order; a bad row is one
    PricerError naming the file and line."""
    path = Path(source)
    fmt = read.detect_format(path, text_column)
    read.check_columns(path, fmt, [text_column] + ([price_column] if need_price else []), split)
    items = []
    for n, (line, row) in enumerate(read.rows(path, fmt, split=split)):
        if isinstance(row, read.Bad):
            raise PricerError(f"{read.where(path, fmt, line)}: {row.message}")
        text = row.get(text_column)
        if not isinstance(text, str):
            what = "missing" if text is None else f"not text ({type(text).__name__})"
            raise PricerError(f"{read.where(path, fmt, line)}: '{text_column}' is {what}")
        rid, category = row.get("id"), row.get("category")
        items.append(Item(
            id=str(n) if rid is None else str(rid),
            text=text,
            price=_price(row.get(price_column), read.where(path, fmt, line), price_column,
                         need_price),
            category=category if isinstance(category, str) and category else None,
        ))
    return items


def fingerprint(items: list[Item]) -> str:
    """A short content hash of items (prompt and price, in order): the same whether they came from
    a JSONL file or a saved data set, so a run card and an evaluation of the same data agree."""
    h = hashlib.sha256()
    for item in items:
        h.update(f"{item.prompt}\x1f{item.price!r}\x1e".encode())
    return h.hexdigest()[:16]
