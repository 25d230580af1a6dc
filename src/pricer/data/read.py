"""The one reader of item files: JSON Lines (plain or .gz), CSV, Parquet, saved data sets, and the
Amazon Reviews 2023 raw metadata on the Hub.

Everything is streamed in chunks of `(line, entry)` pairs, so curation of a huge file stays in
bounded memory; `line` is the line in the file (JSON Lines, CSV) or the row number from 1
(Parquet, saved data set). An entry is a dict, a `Bad(code, message)` for a row that cannot be a
record (not UTF-8, not JSON, wrong number of CSV fields), or, for JSON Lines, the raw bytes of
the line (curation parses them in its worker processes with `parse_json_line`).

Three users, one reader:
- `pricer.data.items.read_items` (strict: training, evaluation): a bad row is one PricerError
  naming the file and the line;
- `read_texts` (lenient: `pricer predict --input`): good rows kept, bad rows returned with their
  line and reason;
- `pricer.data.pipeline` (`pricer data`): chunks go to the curation workers; bad rows are counted.

Which libraries: pyarrow streams Parquet in batches and `datasets` loads saved data sets. JSON
Lines and CSV are read line by line by hand because the `datasets`/pandas loaders stop at the
first bad row of a file (or replace bad bytes) instead of naming or counting each with its line.
"""

import codecs
import csv
import gzip
import io
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pricer.errors import PricerError, reading

FORMATS = ("amazon-raw", "jsonl", "csv", "parquet")  # --format; a folder is a saved data set
DATASET = "dataset"
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


@dataclass(frozen=True)
class Bad:
    """A row that is not a record. `code` is its curation drop reason (bad_encoding, bad_json,
    bad_row); `message` says what is wrong, for the user."""
    code: str
    message: str


@dataclass
class Row:
    """A description to price (lenient reading): its id, line (or row) and text."""
    id: str
    line: int
    text: str


# ---- formats -------------------------------------------------------------------------------

def category_from_name(path: Path) -> str | None:
    """'raw_meta_Appliances.jsonl.gz' -> 'Appliances' (as the reference names categories:
    underscores become spaces); None if the name is not an Amazon category file."""
    match = re.match(r"(?:raw_)?meta_([A-Za-z_]+?)\.jsonl?(?:\.gz)?$", path.name)
    if match and match.group(1) in AMAZON_CATEGORIES:
        return match.group(1).replace("_", " ")
    return None


def detect_format(path: Path, text_column: str = "text") -> str:
    """The one decision of what a path holds: a folder is a saved data set; else from the name
    (.csv, .parquet, .jsonl/.json(.gz)). A JSON Lines file is Amazon raw metadata when its name
    says `meta_` or its first record has a title but no text column."""
    path = Path(path)
    if path.is_dir():
        return DATASET
    if not path.exists():
        raise PricerError(f"{path}: no such file or folder")
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
    raise PricerError(f"{path}: cannot tell the format from the name (use .jsonl, .csv, .parquet, "
                      f"a saved data set folder, or pass --format {'|'.join(FORMATS)})")


def where(path: Path, fmt: str, line: int) -> str:
    """'file, line N' (text files) or 'file, row N' (Parquet, data sets): for messages."""
    return f"{path}, {'row' if fmt in ('parquet', DATASET) else 'line'} {line}"


def columns_of(path: Path, fmt: str, split: str = "test") -> list[str]:
    """The columns of a file (JSON Lines: the keys of its first object; [] when empty)."""
    with reading(path):
        if fmt == "csv":  # bytes further on are each row's business (see _csv_chunks)
            with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
                header = next(csv.reader(f), [])
            if any(_has_surrogates(h) for h in header):
                raise PricerError(f"{path}: the header line is not UTF-8 text")
            return header
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        if fmt == DATASET:
            return list(_load_split(path, split).column_names)
    first = _first_object(path)
    return list(first) if first is not None else []


def check_columns(path: Path, fmt: str, needed: list[str], split: str = "test") -> None:
    """One clear error if a needed column is missing (checked before any long work)."""
    have = columns_of(path, fmt, split)
    missing = [c for c in needed if c not in have]
    if missing and have:
        names, plural = ", ".join(repr(c) for c in missing), "s" if len(missing) > 1 else ""
        raise PricerError(f"{path}: no {names} column{plural} "
                          f"(has: {', '.join(map(str, have))})")


# ---- one JSON line -------------------------------------------------------------------------

def parse_json_line(raw: bytes) -> dict | Bad:
    """One JSON Lines record, or Bad: not UTF-8 (never replaced), not JSON, not an object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Bad("bad_encoding", f"not UTF-8 text (byte {e.start})")
    try:
        record = json.loads(text)
    except ValueError as e:
        return Bad("bad_json", f"not valid JSON ({getattr(e, 'msg', e)})")
    if not isinstance(record, dict):
        return Bad("bad_json", "not a JSON object")
    return record


def _open_binary(path: Path):
    raw = open(path, "rb")
    return raw, (gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw)


def _first_object(path: Path) -> dict | None:
    """The first of the first 1000 lines that parses as a JSON object (to check columns early)."""
    with reading(path):
        raw, stream = _open_binary(path)
        with raw:
            for n, line in zip(range(1000), stream):
                record = parse_json_line(line[3:] if n == 0 and line.startswith(
                    codecs.BOM_UTF8) else line)
                if not isinstance(record, Bad):
                    return record
    return None


# ---- chunked streams -------------------------------------------------------------------------

def chunks(path: Path, fmt: str, *, split: str = "test", columns: list[str] | None = None,
           chunk_size: int = 1000):
    """`(entries, position)` for every `chunk_size` rows of a file: entries are `(line, entry)`
    pairs (see the module doc), position how far into the file we are (bytes on disk; rows for a
    saved data set), for a progress bar."""
    path = Path(path)
    if fmt == DATASET:
        return _dataset_chunks(path, split, chunk_size)
    if fmt == "csv":
        return _csv_chunks(path, chunk_size)
    if fmt == "parquet":
        return _parquet_chunks(path, columns, chunk_size)
    if fmt in ("jsonl", "amazon-raw"):
        return _json_chunks(path, chunk_size)
    raise PricerError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")


def rows(path: Path, fmt: str, *, split: str = "test", columns: list[str] | None = None):
    """`(line, record or Bad)` for every row of a file, in file order (JSON lines parsed)."""
    for entries, _ in chunks(path, fmt, split=split, columns=columns):
        for line, entry in entries:
            yield line, parse_json_line(entry) if isinstance(entry, bytes) else entry


def _json_chunks(path: Path, chunk_size: int):
    """Non-blank raw lines (bytes); a UTF-8 byte order mark on the first line is not data."""
    with reading(path):
        raw, stream = _open_binary(path)
        with raw:
            chunk = []
            for n, line in enumerate(stream, 1):
                if n == 1 and line.startswith(codecs.BOM_UTF8):
                    line = line[len(codecs.BOM_UTF8):]
                if line.strip():
                    chunk.append((n, line))
                    if len(chunk) == chunk_size:
                        yield chunk, raw.tell()
                        chunk = []
            if chunk:
                yield chunk, raw.tell()


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _csv_chunks(path: Path, chunk_size: int):
    """Rows as dicts of strings. A row with bytes that are not UTF-8 (kept as surrogates while
    reading, so one bad row does not end the file), a field the csv module refuses, or another
    number of fields than the header (an unquoted comma would shift every later column) is Bad."""
    with reading(path):
        with open(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                    newline="")
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                return
            if any(_has_surrogates(h) for h in header):
                raise PricerError(f"{path}: the header line is not UTF-8 text")
            chunk = []
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    entry = Bad("bad_row", f"not a readable CSV row ({e})")
                else:
                    if not fields:  # a blank line is not a row
                        continue
                    if len(fields) != len(header):
                        entry = Bad("bad_row", f"{len(fields)} fields where the header has "
                                               f"{len(header)} (an unquoted comma?)")
                    elif any(_has_surrogates(f) for f in fields):
                        entry = Bad("bad_encoding", "not UTF-8 text")
                    else:
                        entry = dict(zip(header, fields))
                chunk.append((reader.line_num, entry))
                if len(chunk) == chunk_size:
                    yield chunk, raw.tell()
                    chunk = []
            if chunk:
                yield chunk, raw.tell()


def _parquet_chunks(path: Path, columns: list[str] | None, chunk_size: int):
    import pyarrow.parquet as pq

    with reading(path):
        file = pq.ParquetFile(path)
        if columns is not None:
            have = set(file.schema_arrow.names)
            columns = [c for c in dict.fromkeys(columns) if c in have]
        size, total, done = path.stat().st_size, max(file.metadata.num_rows, 1), 0
        for batch in file.iter_batches(batch_size=chunk_size, columns=columns):
            records = batch.to_pylist()
            yield ([(done + i, r) for i, r in enumerate(records, 1)],
                   int(size * (done + len(records)) / total))
            done += len(records)


def _load_split(path: Path, split: str):
    from datasets import load_from_disk

    if not ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        raise PricerError(f"{path}: a folder, but not a saved data set (make one with "
                          "`pricer data`)")
    data = load_from_disk(str(path))
    if hasattr(data, "keys"):
        if split not in data:
            raise PricerError(f"{path}: no '{split}' split (has: {', '.join(data.keys())})")
        data = data[split]
    return data


def _dataset_chunks(path: Path, split: str, chunk_size: int):
    with reading(path):
        data, done = _load_split(path, split), 0
        for batch in data.iter(batch_size=chunk_size):
            records = [dict(zip(batch, values)) for values in zip(*batch.values())]
            yield [(done + i, r) for i, r in enumerate(records, 1)], done + len(records)
            done += len(records)


# ---- the Hub ----------------------------------------------------------------------------------

def hub_chunks(category: str, chunk_size: int = 1000):
    """Stream `raw_meta_<category>` from the Hub (needs a network), as `chunks` does.

    First the `datasets` streaming loader (HF-format dicts, as the reference read them); if the
    data set cannot be loaded that way (datasets >= 4 no longer runs loading scripts), the raw
    file `raw/meta_categories/meta_<category>.jsonl` is streamed line by line instead."""
    from datasets import load_dataset

    try:
        stream = iter(load_dataset(HUB_DATASET, f"raw_meta_{category}", split="full",
                                   streaming=True))
        first = next(stream, None)
    except Exception as e:  # noqa: BLE001  (any failure: try the raw file)
        first, why, stream = None, f"{type(e).__name__}: {e}", None
    if stream is None:
        yield from _hub_raw_file(category, chunk_size, why)
        return
    yield from _numbered_chunks(itertools.chain([first] if first is not None else [], stream),
                                chunk_size)


def _numbered_chunks(records, chunk_size: int):
    """(entries, records so far) for every `chunk_size` records (the progress bar's unit)."""
    numbered, n = enumerate(records, 1), 0
    while chunk := list(itertools.islice(numbered, chunk_size)):
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
        yield from _numbered_chunks((line for line in f if line.strip()), chunk_size)


# ---- lenient reading (prediction) --------------------------------------------------------------

def read_texts(source: str | Path, split: str = "test", text_column: str = "text"
               ) -> tuple[list[Row], list[tuple[int, str]]]:
    """(good rows, bad rows as (line, reason)) of a .jsonl/.csv/.parquet file or a saved data set.

    For `pricer predict --input`: price what can be priced. A row that is not a record, or whose
    text is missing or not a string, is skipped and returned with its line (or row) number."""
    path = Path(source)
    fmt = detect_format(path, text_column)
    if fmt != "jsonl" and fmt != "amazon-raw":
        check_columns(path, fmt, [text_column], split)
    good: list[Row] = []
    bad: list[tuple[int, str]] = []
    for line, record in rows(path, fmt, split=split):
        if isinstance(record, Bad):
            bad.append((line, record.message))
            continue
        text = record.get(text_column)
        if not isinstance(text, str):
            bad.append((line, f"no '{text_column}' text" if text is None else
                        f"'{text_column}' is not text ({type(text).__name__})"))
            continue
        rid = record.get("id")
        good.append(Row(id=str(rid) if rid is not None and rid == rid else str(line), line=line,
                        text=text))
    if not good:
        raise PricerError(f"{path}: no row with a '{text_column}' text to price")
    return good, bad
