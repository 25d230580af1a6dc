"""`pricer data` end to end: stream records -> curate in parallel chunks -> balance -> split ->
save atomically with a report.

Curation runs in worker processes (2 by default, one per core), a chunk of 1000 records at a
time; each worker holds the tokenizer (inherited by fork) so the token rule is one batch call. At most a few chunks
are in flight, so memory stays flat however big the raw file is (`multiprocessing.Pool.imap`
would read the whole file ahead, hence the small hand-written window below).
"""

import json
import multiprocessing
import os
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pricer.data import balance as balancing
from pricer.data import report as reports
from pricer.data import sources, store
from pricer.data.curate import (REFERENCE, USER, Drop, Settings, amazon_draft, check_price,
                                text_field, token_rule, user_draft)
from pricer.errors import PricerError

SMALL_FILE = 2_000_000  # bytes: below this, one process is faster than starting workers


@dataclass
class Spec:
    """How to turn one record into (draft text, price, category)."""
    kind: str                               # "amazon" or "user"
    settings: Settings
    text_columns: tuple[str, ...] = ("text",)
    price_column: str = "price"
    category_column: str | None = None
    category: str | None = None             # fixed category (e.g. from the file name)


def _has_surrogates(value) -> bool:
    return isinstance(value, str) and any("\udc80" <= c <= "\udcff" for c in value)


def draft(record, spec: Spec) -> tuple[str, float, str | None]:
    """One record -> (draft text, price, category), or raise Drop(reason)."""
    if isinstance(record, bytes):
        try:
            line = record.decode("utf-8")
        except UnicodeDecodeError:
            raise Drop("bad_encoding") from None
        try:
            record = json.loads(line)
        except ValueError:
            raise Drop("bad_json") from None
    if not isinstance(record, dict):
        raise Drop("bad_json")
    if "__bad_row__" in record:
        raise Drop("bad_row")
    if spec.kind == "amazon":
        text, price, category = amazon_draft(record, spec.settings)
        return text, price, spec.category or category
    used = (spec.price_column, *spec.text_columns)
    if any(_has_surrogates(record.get(c)) for c in used):
        raise Drop("bad_encoding")
    price = check_price(record.get(spec.price_column), spec.settings)
    parts = [text_field(record.get(c)) for c in spec.text_columns]
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    if not text:
        raise Drop("missing_text")
    category = record.get(spec.category_column) if spec.category_column else spec.category
    return user_draft(text, spec.settings), price, category if isinstance(category, str) else None


_tokenizer = None


def _init_worker(tokenizer) -> None:
    global _tokenizer
    if isinstance(tokenizer, str):
        from pricer.models.load import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    _tokenizer = tokenizer


def curate_chunk(records: list, spec: Spec) -> tuple[list, Counter, int]:
    """(curated items, drop counts, records read) of one chunk; runs in a worker."""
    dropped: Counter = Counter()
    records = [r for r in records if not isinstance(r, bytes) or r.strip()]  # blank: no record
    drafts = []
    for record in records:
        try:
            drafts.append(draft(record, spec))
        except Drop as d:
            dropped[d.reason] += 1
    items = []
    for (_, price, category), kept in zip(drafts, token_rule([d[0] for d in drafts], _tokenizer,
                                                             spec.settings)):
        if kept is None:
            dropped["too_few_tokens"] += 1
        else:
            items.append(reports.Curated(kept[0], price, category, kept[1]))
    return items, dropped, len(records)


def ordered_map(chunks, spec: Spec, tokenizer, workers: int, window: int = 4):
    """curate_chunk over (chunk, position) pairs, in order, with at most `workers * window`
    chunks in flight. Yields (result, position)."""
    if workers <= 1:
        _init_worker(tokenizer)
        for chunk, position in chunks:
            yield curate_chunk(chunk, spec), position
        return
    fork = "fork" in multiprocessing.get_all_start_methods()
    if fork and isinstance(tokenizer, str):  # load once here; forked workers inherit it
        from pricer.models.load import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    context = multiprocessing.get_context("fork" if fork else None)
    # One process per core instead of Rust threads (set while workers fork, then restored).
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(tokenizer,)) as pool:
            pending: deque = deque()
            for chunk, position in chunks:
                pending.append((pool.submit(curate_chunk, chunk, spec), position))
                if len(pending) >= workers * window:
                    future, at = pending.popleft()
                    yield future.result(), at
            while pending:
                future, at = pending.popleft()
                yield future.result(), at
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def curate_source(path: Path | None, fmt: str | None = None, *, hub_category: str | None = None,
                  settings: Settings | None = None, tokenizer="default",
                  text_columns=("text",), price_column: str = "price",
                  category_column: str | None = None, category: str | None = None,
                  workers: int = 2, chunk_size: int = 1000, progress: bool = True):
    """Curate one local file (or one Hub category): (items, read, dropped, format)."""
    if hub_category:
        fmt = "amazon-raw"
        spec = Spec("amazon", settings or REFERENCE, category=hub_category.replace("_", " "))
        chunks, total, label = sources.hub_records(hub_category, chunk_size), None, hub_category
    else:
        path = Path(path)
        if not path.is_file():
            raise PricerError(f"{path}: no such file")
        text_columns = tuple(text_columns)
        fmt = fmt or sources.detect_format(path, text_columns[0])
        if fmt not in sources.FORMATS:
            raise PricerError(f"unknown format '{fmt}' (choose from {', '.join(sources.FORMATS)})")
        if fmt == "amazon-raw":
            spec = Spec("amazon", settings or REFERENCE,
                        category=category or sources.category_from_name(path))
            chunks = sources.json_lines(path, chunk_size)
        else:
            columns = [*text_columns, price_column] + ([category_column] if category_column else [])
            sources.check_columns(path, fmt, columns)
            spec = Spec("user", settings or USER, text_columns, price_column, category_column,
                        category)
            chunks = (sources.json_lines(path, chunk_size) if fmt == "jsonl" else
                      sources.csv_rows(path, chunk_size) if fmt == "csv" else
                      sources.parquet_rows(path, columns, chunk_size))
        total, label = path.stat().st_size, path.name
        if total < SMALL_FILE:
            workers = 1

    items, dropped, read = [], Counter(), 0
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    look = [TextColumn("[bold blue]curating {task.description}"), BarColumn(),
            TextColumn("{task.fields[read]:,} read, {task.fields[kept]:,} kept"),
            TimeElapsedColumn()]
    with Progress(*look, disable=not progress, transient=False) as bar:
        task = bar.add_task(label, total=total, read=0, kept=0)
        for (chunk_items, chunk_dropped, n), position in ordered_map(chunks, spec, tokenizer,
                                                                     workers):
            items.extend(chunk_items)
            dropped.update(chunk_dropped)
            read += n
            bar.update(task, completed=position if total else None, read=read, kept=len(items))
    return items, read, dropped, fmt


def make_dataset(items: list, read: int, dropped: Counter, out: str | Path,
                 balance: balancing.BalanceSettings | None = None,
                 settings: Settings | None = None, source: str = "", fmt: str = "",
                 show: bool = True, **extra) -> dict:
    """Balance, split, save (atomically) and report; returns the report."""
    balance = balance or balancing.BalanceSettings()
    settings = settings or REFERENCE
    sample = balancing.balance(items, balance)
    train, test = balancing.split(sample, balance)
    dropped = Counter(dropped)
    dropped["balanced_out"] += len(items) - len(sample)
    dropped["not_in_split"] += len(sample) - len(train) - len(test)
    report = reports.build(source, fmt, settings.to_dict() | {"balance": balance.to_dict()},
                           read, dropped, train, test, out=str(Path(out).resolve()), **extra)
    store.save(store.to_dataset_dict(train, test, settings.question), out, report)
    if show:
        reports.show(report)
    return report
