"""`pricer data` end to end: read records -> curate in parallel chunks -> balance -> split ->
save atomically with a report.

Memory does not grow with the input's texts: curated items go to a `Spool` on disk as they come,
balancing and the split choose item numbers from the prices, categories and text digests it
keeps in memory (~40 bytes an item; balancing adds lists of numbers, at most a few hundred bytes
an item), and the chosen items are read back and written to the data set in batches. The output
is the one the all-in-memory code gave (tests/test_data_streaming.py).

Curation runs in worker processes (2 by default, one per core), a chunk of 1000 records at a
time; each worker holds the tokenizer (inherited by fork) so the token rule is one batch call.
At most a few chunks are in flight, so memory stays flat however big the raw file is
(`multiprocessing.Pool.imap` would read the whole file ahead, hence the small window below).
Workers die with the process that started them, even when it is killed (SIGKILL) and cannot
clean up. Another engine (a map with `ordered_map`'s signature, e.g. `distributed.DaskEngine`,
which runs the chunks on a Dask cluster) can be passed to `curate_source`/`build_dataset`.

Progress is reported through a callback, `progress(done, total, source=..., read=..., kept=...)`
(`done`/`total` in bytes of the file, or records for the Hub where `total` is None).
"""

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from pricer.data import balance as balancing
from pricer.data import read
from pricer.data import report as reports
from pricer.data import store
from pricer.data.curate import (REFERENCE, USER, Drop, Settings, amazon_draft, check_price,
                                text_field, token_rule, user_draft)
from pricer.data.spool import Spool
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


def draft(record, spec: Spec) -> tuple[str, float, str | None]:
    """One record (a dict, a raw JSON line, or a read.Bad) -> (draft text, price, category), or
    raise Drop(reason)."""
    if isinstance(record, bytes):
        record = read.parse_json_line(record)
    if isinstance(record, read.Bad):
        raise Drop(record.code)
    if not isinstance(record, dict):
        raise Drop("bad_json")
    if spec.kind == "amazon":
        text, price, category = amazon_draft(record, spec.settings)
        return text, price, spec.category or category
    price = check_price(record.get(spec.price_column), spec.settings)
    parts = [text_field(record.get(c)) for c in spec.text_columns]
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    if not text:
        raise Drop("missing_text")
    category = record.get(spec.category_column) if spec.category_column else spec.category
    return user_draft(text, spec.settings), price, category if isinstance(category, str) else None


def curate_chunk(entries: list, spec: Spec, tokenizer=None) -> tuple[list, Counter, int]:
    """(curated items, drop counts, records read) of one chunk of (line, entry) pairs."""
    tokenizer = _tokenizer if tokenizer is None else tokenizer
    dropped: Counter = Counter()
    drafts = []
    for _, record in entries:
        try:
            drafts.append(draft(record, spec))
        except Drop as d:
            dropped[d.reason] += 1
    items = []
    for (_, price, category), kept in zip(drafts, token_rule([d[0] for d in drafts], tokenizer,
                                                             spec.settings)):
        if kept is None:
            dropped["too_few_tokens"] += 1
        else:
            items.append(reports.Curated(kept[0], price, category, kept[1]))
    return items, dropped, len(entries)


# ---- worker processes --------------------------------------------------------------------------

_tokenizer = None


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive its parent: a killed `pricer data` cannot shut its pool down.
    Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere, and
    for a parent that died before that took effect, a thread watches the parent's pid."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _init_worker(tokenizer, parent: int | None = None) -> None:
    global _tokenizer
    if parent is not None:
        _die_with_parent(parent)
    _tokenizer = tokenizer


def ordered_map(chunks, spec: Spec, tokenizer, workers: int, window: int = 4):
    """curate_chunk over (chunk, position) pairs, in order, with at most `workers * window`
    chunks in flight. Yields (result, position)."""
    if workers <= 1:
        for chunk, position in chunks:
            yield curate_chunk(chunk, spec, tokenizer), position
        return
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else None)
    # One process per core instead of Rust threads (set while workers fork, then restored).
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(tokenizer, os.getpid())) as pool:
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


# ---- one source ------------------------------------------------------------------------------

def curate_source(path: Path | None, fmt: str | None = None, *, hub_category: str | None = None,
                  tokenizer, overrides: dict | None = None, text_columns=("text",),
                  price_column: str = "price", category_column: str | None = None,
                  category: str | None = None, workers: int = 2, chunk_size: int = 1000,
                  progress=None, into=None, engine=None):
    """Curate one local file (or one Hub category): (items, read, dropped, format).

    The format (Amazon raw or your own file) is decided here, once: Amazon raw records get the
    reference's settings, your files the lenient price rule (`curate.USER`); `overrides` (e.g.
    min_price) apply to both. The items are added to `into` (a list or a `Spool`, which keeps
    them on disk) and it is returned; by default a new list. `engine` curates the chunks: a
    callable with `ordered_map`'s signature (e.g. a `distributed.DaskEngine`, used whatever the
    file's size); None: `ordered_map`, local processes (one for a small file)."""
    if hub_category:
        fmt = "amazon-raw"
        chunks, total, label = read.hub_chunks(hub_category, chunk_size), None, hub_category
        category = hub_category.replace("_", " ")
    else:
        path = Path(path)
        if not path.is_file():
            raise PricerError(f"{path}: no such file")
        text_columns = tuple(text_columns)
        fmt = fmt or read.detect_format(path, text_columns[0])
        if fmt not in read.FORMATS:
            raise PricerError(f"unknown format '{fmt}' (choose from {', '.join(read.FORMATS)})")
        columns = [*text_columns, price_column] + ([category_column] if category_column else [])
        if fmt == "amazon-raw":
            category = category or read.category_from_name(path)
        else:
            read.check_columns(path, fmt, columns)
        chunks = read.chunks(path, fmt, columns=columns, chunk_size=chunk_size)
        total, label = path.stat().st_size, path.name
        if total < SMALL_FILE and engine is None:
            workers = 1
    settings = settings_for(fmt, overrides)
    if fmt == "amazon-raw":
        spec = Spec("amazon", settings, category=category)
    else:
        spec = Spec("user", settings, text_columns, price_column, category_column, category)

    items, dropped, count, kept = [] if into is None else into, Counter(), 0, 0
    for (chunk_items, chunk_dropped, n), position in (engine or ordered_map)(chunks, spec,
                                                                            tokenizer, workers):
        items.extend(chunk_items)
        dropped.update(chunk_dropped)
        count += n
        kept += len(chunk_items)
        if progress:
            progress(position, total, source=label, read=count, kept=kept)
    return items, count, dropped, fmt


def settings_for(fmt: str, overrides: dict | None = None) -> Settings:
    """The curation settings of a format: the reference's for Amazon raw records, the lenient
    price rule for your own files; `overrides` replace numbers of either."""
    return replace(REFERENCE if fmt == "amazon-raw" else USER, **(overrides or {}))


# ---- the whole data set ----------------------------------------------------------------------

def make_dataset(items, read_count: int, dropped: Counter, out: str | Path,
                 balance: balancing.BalanceSettings | None = None,
                 settings: Settings | None = None, source: str = "", fmt: str = "",
                 overwrite: bool = False, tokenizer=None, **extra) -> dict:
    """Balance, split, save (atomically) and report; returns the report. Used by `pricer data`
    and the demo catalog alike. `items`: a `Spool` (or a list, spooled here). Only numbers and
    prices are held; the texts are read back from the spool while the data set is written.
    The prompts are in `settings.prompt_format`; `tokenizer` cuts their descriptions where that
    format has a token limit (2025: 110 tokens)."""
    if not isinstance(items, Spool):
        with Spool() as spool:
            spool.extend(items)
            return make_dataset(spool, read_count, dropped, out, balance, settings, source, fmt,
                                overwrite, tokenizer, **extra)
    balance = balance or balancing.BalanceSettings()
    settings = settings or REFERENCE
    sample = balancing.balance_numbers(items.prices, items.categories(), balance)
    train, test = balancing.split_numbers([items.digest(n) for n in sample], balance)
    train, test = [sample[i] for i in train], [sample[i] for i in test]
    dropped = Counter(dropped)
    dropped["balanced_out"] += len(items) - len(sample)
    dropped["not_in_split"] += len(sample) - len(train) - len(test)
    report = reports.build(source, fmt, settings.to_dict() | {"balance": balance.to_dict()},
                           read_count, dropped, list(items.items(train, texts=False)),
                           list(items.items(test, texts=False)), out=str(Path(out).resolve()),
                           prompt_format=settings.prompt_format, **extra)
    store.save_items(items.items(train), items.items(test), out, report,
                     settings.prompt_format, tokenizer, overwrite)
    return report


def build_dataset(out: str | Path, *, tokenizer, inputs=(), hub=(), fmt: str | None = None,
                  text_columns=("text",), price_column: str = "price",
                  category_column: str | None = None, category: str | None = None,
                  overrides: dict | None = None, balance: balancing.BalanceSettings | None = None,
                  workers: int = 2, chunk_size: int = 1000, overwrite: bool = False,
                  progress=None, engine=None) -> dict:
    """`pricer data`: curate every input file and Hub category, then balance, split and save to
    `out`. Returns the report. `engine`: see `curate_source` (None: local processes)."""
    if not inputs and not hub:
        raise PricerError("give --input PATH (or --hub CATEGORY, or --demo)")
    out = store.check_out(out, overwrite)  # before any long work
    count, dropped, formats = 0, Counter(), []
    with Spool(out.parent) as items:  # the curated items wait on disk, beside OUT
        for source in [*map(Path, inputs), *hub]:
            is_hub = isinstance(source, str)
            _, n, why, used = curate_source(
                None if is_hub else source, fmt, hub_category=source if is_hub else None,
                tokenizer=tokenizer, overrides=overrides, text_columns=text_columns,
                price_column=price_column, category_column=category_column, category=category,
                workers=workers, chunk_size=chunk_size, progress=progress, into=items,
                engine=engine)
            count += n
            dropped.update(why)
            formats.append(used)
        user = any(f != "amazon-raw" for f in formats)
        names = [str(p) for p in inputs] + [f"hub:raw_meta_{c}" for c in hub]
        return make_dataset(items, count, dropped, out, balance=balance,
                            settings=settings_for("jsonl" if user else "amazon-raw", overrides),
                            source=", ".join(names), fmt=",".join(dict.fromkeys(formats)),
                            overwrite=overwrite, tokenizer=tokenizer)
