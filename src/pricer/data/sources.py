"""Where records come from, streamed in chunks (never a whole file in memory).

- Amazon Reviews 2023 `raw_meta_<Category>` JSON Lines files, plain or .gz (both conventions:
  the Hub loader's strings and the raw files' numbers/objects), or the Hub data set by category.
- User files: JSON Lines, CSV or Parquet with chosen text and price columns.

Each source yields `(chunk, position)`: a list of records (raw bytes lines, or dicts) and how far
into the file we are (bytes of the file on disk, for the progress bar).
"""

import csv
import itertools
import gzip
import io
import json
import re
from pathlib import Path

from pricer.errors import PricerError

FORMATS = ("amazon-raw", "jsonl", "csv", "parquet")
HUB_DATASET = "McAuley-Lab/Amazon-Reviews-2023"
# The categories of Amazon Reviews 2023 (config raw_meta_<name>).
AMAZON_CATEGORIES = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive",
    "Baby_Products", "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics",
    "Gift_Cards", "Grocery_and_Gourmet_Food", "Handmade_Products", "Health_and_Household",
    "Health_and_Personal_Care", "Home_and_Kitchen", "Industrial_and_Scientific", "Kindle_Store",
    "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments", "Office_Products",
    "Patio_Lawn_and_Garden", "Pet_Supplies", "Software", "Sports_and_Outdoors",
    "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games", "Unknown")


def category_from_name(path: Path) -> str | None:
    """'raw_meta_Appliances.jsonl.gz' -> 'Appliances' (as the reference names categories:
    underscores become spaces); None if the name is not an Amazon category file."""
    match = re.match(r"(?:raw_)?meta_([A-Za-z_]+?)\.jsonl?(?:\.gz)?$", path.name)
    if match and match.group(1) in AMAZON_CATEGORIES:
        return match.group(1).replace("_", " ")
    return None


def detect_format(path: Path, text_column: str = "text") -> str:
    """From the file name: .csv, .parquet, .jsonl/.json(.gz); a JSON Lines file is Amazon raw
    metadata when its name says `meta_` or its first record has a title but no text column."""
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    if re.search(r"\.jsonl?(\.gz)?$", name):
        if "meta_" in name:
            return "amazon-raw"
        first = _first_object(path)
        if first is not None and "title" in first and text_column not in first:
            return "amazon-raw"
        return "jsonl"
    raise PricerError(f"{path}: cannot tell the format from the name; pass --format "
                      f"({', '.join(FORMATS)})")


def _open_binary(path: Path):
    raw = open(path, "rb")
    return raw, (gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw)


def _first_object(path: Path) -> dict | None:
    """The first of the first 1000 lines that parses as a JSON object (to check columns early)."""
    raw, stream = _open_binary(path)
    with raw:
        try:
            for _, line in zip(range(1000), stream):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    return obj
        except (OSError, EOFError) as e:
            raise PricerError(f"{path}: cannot read ({e})") from None
    return None


def json_lines(path: Path, chunk_size: int = 1000):
    """Non-blank raw lines (bytes) in chunks; decoding and parsing happen in the workers."""
    raw, stream = _open_binary(path)
    with raw:
        chunk = []
        try:
            for line in stream:
                if line.strip():
                    chunk.append(line)
                    if len(chunk) == chunk_size:
                        yield chunk, raw.tell()
                        chunk = []
        except (OSError, EOFError) as e:  # truncated .gz: keep what was read, say so
            raise PricerError(f"{path}: cannot read past {raw.tell():,} bytes ({e})") from None
        if chunk:
            yield chunk, raw.tell()


def check_columns(path: Path, fmt: str, columns: list[str]) -> None:
    """One clear error if a needed column is missing (checked before curating)."""
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            have = next(csv.reader(f), [])
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            have = pq.ParquetFile(path).schema_arrow.names
        except Exception as e:
            raise PricerError(f"{path}: not a readable Parquet file ({e})") from None
    else:
        first = _first_object(path)
        if first is None:
            return  # empty or nothing parses: every line is counted as bad_json
        have = list(first)
    missing = [c for c in columns if c not in have]
    if missing and have:
        raise PricerError(f"{path}: no column {', '.join(repr(c) for c in missing)} "
                          f"(has: {', '.join(map(str, have))})")


def csv_rows(path: Path, chunk_size: int = 1000):
    """CSV rows as dicts of strings. Bytes that are not UTF-8 survive as surrogates, so the
    worker can count the row as bad_encoding instead of failing the file."""
    raw = open(path, "rb")
    with raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        chunk = []
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                row = {"__bad_row__": True}
            chunk.append(row)
            if len(chunk) == chunk_size:
                yield chunk, raw.tell()
                chunk = []
        if chunk:
            yield chunk, raw.tell()


def parquet_rows(path: Path, columns: list[str], chunk_size: int = 1000):
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    size, done = path.stat().st_size, 0
    for batch in file.iter_batches(batch_size=chunk_size, columns=columns):
        done += batch.num_rows
        yield batch.to_pylist(), int(size * done / max(file.metadata.num_rows, 1))


def hub_records(category: str, chunk_size: int = 1000):
    """Stream `raw_meta_<category>` from the Hub (needs a network).

    First the `datasets` streaming loader (HF-format dicts, as the reference read them); if the
    data set cannot be loaded that way (datasets >= 4 no longer runs loading scripts), the raw
    file `raw/meta_categories/meta_<category>.jsonl` is streamed line by line instead."""
    from datasets import load_dataset

    try:
        stream = iter(load_dataset(HUB_DATASET, f"raw_meta_{category}", split="full",
                                   streaming=True))
        first = next(stream, None)
    except Exception as e:  # noqa: BLE001  (any failure: try the raw file)
        first, why = None, f"{type(e).__name__}: {e}"
        stream = None
    if stream is None:
        yield from _hub_raw_file(category, chunk_size, why)
        return
    yield from _counted_chunks(itertools.chain([first] if first is not None else [], stream),
                               chunk_size)


def _counted_chunks(records, chunk_size: int):
    """(chunk, records so far) for every `chunk_size` records (the progress bar's unit)."""
    records, n = iter(records), 0
    while chunk := list(itertools.islice(records, chunk_size)):
        n += len(chunk)
        yield chunk, n


def _hub_raw_file(category: str, chunk_size: int, why: str):
    from huggingface_hub import HfFileSystem

    name = f"datasets/{HUB_DATASET}/raw/meta_categories/meta_{category}.jsonl"
    try:
        f = HfFileSystem().open(name, "rb")
    except Exception as e:  # noqa: BLE001  (offline, unknown category: one clear line)
        raise PricerError(f"{HUB_DATASET} raw_meta_{category}: {why}; "
                          f"raw file: {type(e).__name__}: {e}") from None
    with f:
        yield from _counted_chunks((line for line in f if line.strip()), chunk_size)
