"""Read descriptions to price from a file, keeping the good rows and reporting the bad ones.

Unlike `pricer.data.items.read_items` (which stops at the first bad line, right for curated data
sets), `pricer predict --input` must price what it can: a row without a usable text is skipped and
reported with its line number (JSON Lines / CSV: the line in the file; Parquet / saved data set:
the row number, from 1).
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from pricer.errors import PricerError


@dataclass
class Row:
    id: str
    line: int
    text: str


def _check(rows, bad, line, record, text_column):
    if not isinstance(record, dict):
        bad.append((line, "not an object"))
        return
    text = record.get(text_column)
    if not isinstance(text, str):
        bad.append((line, f"no '{text_column}' text" if text is None else f"'{text_column}' is not text"))
        return
    rid = record.get("id")
    rows.append(Row(id=str(rid) if rid is not None and rid == rid else str(line), line=line, text=text))


def read_rows(source: str | Path, split: str = "test", text_column: str = "text"):
    """(good rows, bad rows as (line, reason)) of a .jsonl/.csv/.parquet file or a saved data set."""
    path = Path(source)
    if not path.exists():
        raise PricerError(f"{path}: no such file or folder")
    rows: list[Row] = []
    bad: list[tuple[int, str]] = []
    if path.is_dir():
        from datasets import load_from_disk

        try:
            data = load_from_disk(str(path))
        except Exception as e:  # noqa: BLE001 - any failure here means "not a saved data set"
            raise PricerError(f"{path}: not a saved data set ({type(e).__name__})") from None
        if hasattr(data, "keys"):
            if split not in data:
                raise PricerError(f"{path}: no '{split}' split (has: {', '.join(data.keys())})")
            data = data[split]
        records = enumerate(data.to_list(), 1)
    elif path.suffix in (".jsonl", ".json"):
        records = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    records.append((line, json.loads(text)))
                except json.JSONDecodeError:
                    bad.append((line, "not valid JSON"))
    elif path.suffix == ".csv":
        records = []
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f, restkey="__extra__")
            if reader.fieldnames is None or text_column not in reader.fieldnames:
                raise PricerError(f"{path}: no '{text_column}' column in the header")
            for record in reader:
                if "__extra__" in record or None in record.values():
                    bad.append((reader.line_num, "wrong number of fields"))
                    continue
                records.append((reader.line_num, record))
    elif path.suffix == ".parquet":
        import pandas as pd

        records = enumerate(pd.read_parquet(path).to_dict(orient="records"), 1)
    else:
        raise PricerError(f"{path}: unknown file type (use .jsonl, .csv, .parquet or a saved data set)")
    for line, record in records:
        _check(rows, bad, line, record, text_column)
    if not rows:
        raise PricerError(f"{path}: no row with a '{text_column}' text to price")
    return rows, bad
