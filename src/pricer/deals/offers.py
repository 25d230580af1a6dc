"""An offer (a product for sale at a price), the offer price read from a field or a text, and
offers read from JSON Lines / CSV files.

    find_price("Moen faucet, now $1,049.99 (was $1,299)")   # -> 1049.99 (the first amount)
    parse_price("$49.99") == parse_price("49.99") == parse_price(49.99) == 49.99

An offer file has one offer a row: `title`, `description`, `price` (a number or a text such as
"$49.99"; when absent the price is looked for in the title, then the description), `url`; `id`
when it has one. A row that is not a record (bad JSON, ragged CSV) is a `Problem`, counted; the
rest of the file is still read (`pricer.data.read.rows`, the project's one lenient reader).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

# "$49.99", "$ 1,049", "US$12.50", "USD 49.99": the dollar amount of an offer
PRICE = re.compile(r"(?:US\s?\$|\$|\bUSD\s?)\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d{1,2})?(?!\d)")
OFFER_FILES = (".jsonl", ".json", ".jsonl.gz", ".csv")


@dataclass(frozen=True)
class Problem:
    """Something in a source that could not be scanned: `kind` (malformed, timeout, unreachable,
    bad_row, no_price, duplicate, predictor) and one line for the user."""
    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Offer:
    title: str
    description: str
    price: float | None  # the offer price in USD; None when none could be read
    url: str | None
    source: str  # the feed (URL or file) or offer file it came from
    where: str  # where in the source ("entry 3", "line 4"), for messages
    guid: str | None = None  # the entry's own id, when it has one

    @property
    def key(self) -> str:
        """Identity in the memory: the entry (its id, else its link, else its title) at this
        price, so the same product offered again cheaper is a new offer."""
        who = self.guid or self.url or self.title
        return hashlib.sha256(f"{who}\x1f{self.price!r}".encode()).hexdigest()[:24]

    @property
    def text(self) -> str:
        """What the predictor reads: the title, then the description."""
        return f"{self.title}\n{self.description}".strip()

    @property
    def label(self) -> str:
        short = self.title if len(self.title) <= 60 else self.title[:57] + "..."
        return f"{self.source}, {self.where} ({short!r})" if short else f"{self.source}, {self.where}"


def _number(text: str) -> float | None:
    value = float(text.replace(",", ""))
    return value if math.isfinite(value) and value > 0 else None


def find_price(text: str | None) -> float | None:
    """The first dollar amount in `text` ("$49.99", "US$ 1,049", "USD 12"); None without one."""
    match = PRICE.search(text or "")
    return _number(match.group(1) + (match.group(2) or "")) if match else None


def parse_price(value) -> float | None:
    """An offer price given as a field: a positive number, or a text of one with or without a
    dollar sign or currency code ("49.99", "$49.99", "49.99 USD" as Google Merchant feeds). None when it is none of these."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value > 0 else None
    text = str(value).strip()
    bare = re.fullmatch(r"(?:US\s?\$|\$|USD)?\s?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
                        r"\s?(?:USD)?", text, re.IGNORECASE)  # "49.99", "$49.99", "49.99 USD"
    return _number(bare.group(1)) if bare else find_price(text)


def without_price(text: str) -> str:
    """`text` with its first dollar amount taken out (the predictor should not read the offer
    price and anchor on it)."""
    return re.sub(r"\s{2,}", " ", PRICE.sub("", text, count=1)).strip(" -–—|:,")


def make_offer(title: str, description: str, price_field, url: str | None, source: str,
               where: str, guid: str | None = None) -> Offer:
    """An offer whose price is `price_field` when it reads as one, else the first dollar amount of
    the title, else of the description (that amount is then taken out of the text)."""
    title, description = (title or "").strip(), (description or "").strip()
    price = parse_price(price_field)
    if price is None and (price := find_price(title)) is not None:
        title = without_price(title)
    elif price is None and (price := find_price(description)) is not None:
        description = without_price(description)
    return Offer(title, description, price, url or None, source, where, guid or None)


def is_offer_file(source: str) -> bool:
    """True for a JSON Lines / CSV offer file (by its name); feeds are everything else."""
    return not re.match(r"https?://", source) and source.lower().endswith(OFFER_FILES)


def read_offer_file(path: str | Path) -> tuple[list[Offer], list[Problem]]:
    """The offers of a JSON Lines or CSV file with title, description, price, url columns; rows
    that are not records, or without a title, are problems (the rest is still read)."""
    from pricer.data import read

    path = Path(path)
    fmt = "csv" if path.name.lower().endswith(".csv") else "jsonl"
    offers, problems = [], []
    for line, row in read.rows(path, fmt):
        where = read.where(path, fmt, line)
        if isinstance(row, read.Bad):
            problems.append(Problem("bad_row", f"{where}: {row.message}"))
            continue
        title = row.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(Problem("bad_row", f"{where}: no 'title'"))
            continue
        description = row.get("description")
        offers.append(make_offer(title, description if isinstance(description, str) else "",
                                 row.get("price"), _text(row.get("url")), str(path),
                                 f"line {line}", _text(row.get("id"))))
    return offers, problems


def _text(value) -> str | None:
    return str(value) if value not in (None, "") else None
