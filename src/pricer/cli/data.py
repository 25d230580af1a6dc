"""`pricer data`: curate listings into the reference's prompts. Parses, loads the tokenizer,
calls `pricer.data.pipeline` (or the demo catalog) and prints."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from pricer.errors import PricerError

console = Console()


def data(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the data set to.")],
    inputs: Annotated[Optional[list[Path]], typer.Option(
        "--input", "-i", help="A raw_meta_<Category> .jsonl(.gz), or a .jsonl/.csv/.parquet of "
        "your own listings. Repeat for several files.")] = None,
    hub: Annotated[Optional[list[str]], typer.Option(
        help="Stream Amazon Reviews 2023 raw_meta_<CATEGORY> from the Hub (online). Repeatable.")
    ] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Build the offline demo catalog (53,940 real diamonds).")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite",
        help="Replace OUT if it holds a data set pricer wrote (never a folder with other files)."
    )] = False,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="amazon-raw | jsonl | csv | parquet (default: from the name).")
    ] = None,
    text_column: Annotated[Optional[list[str]], typer.Option(
        help="Text column(s) of your file; several (repeat or comma-separate) are joined with "
        "newlines, the first being the title line. Default: text.")] = None,
    price_column: Annotated[str, typer.Option(help="Price column of your file.")] = "price",
    category_column: Annotated[Optional[str], typer.Option(
        help="Category column of your file (optional).")] = None,
    category: Annotated[Optional[str], typer.Option(
        help="One category for all items (default: from a raw_meta_<Category> file name, "
        "else the record's main_category).")] = None,
    train_size: Annotated[Optional[int], typer.Option(
        help="Training items (default: 400,000; --demo: 4,000).")] = None,
    test_size: Annotated[Optional[int], typer.Option(
        help="Test items (default: 2,000; --demo: 500).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of balancing and split.")] = 42,
    balance: Annotated[bool, typer.Option(help="Balance prices as the reference.")] = True,
    bucket_cap: Annotated[Optional[int], typer.Option(
        help="Items per $1 price bucket under $240 (default: 1200 scaled to the sizes).")] = None,
    min_price: Annotated[float, typer.Option(help="Lowest price kept.")] = 0.5,
    max_price: Annotated[float, typer.Option(help="Highest price kept.")] = 999.49,
    min_chars: Annotated[int, typer.Option(help="Contents must be longer than this.")] = 300,
    min_tokens: Annotated[int, typer.Option(help="Text must have more tokens than this.")] = 150,
    max_tokens: Annotated[int, typer.Option(help="Text is cut to this many tokens.")] = 160,
    prompt_format: Annotated[str, typer.Option(
        help="Prompt format of the saved prompts: 2024 (the reference's question) or 2025 "
        "(the 2025 course's question, description cut to 110 tokens).")] = "2024",
    model: Annotated[str, typer.Option("--model", "-m",
        help="Base model whose tokenizer counts tokens ('default', a folder or a Hub id).")
    ] = "default",
    workers: Annotated[int, typer.Option(
        help="Worker processes (--engine dask: of the local cluster; with --scheduler, sizes the "
        "chunks in flight).")] = 2,
    engine: Annotated[str, typer.Option(
        help="Where curation runs: processes (local worker processes) or dask (a Dask cluster; "
        "needs pip install 'pricer[distributed]').")] = "processes",
    scheduler: Annotated[Optional[str], typer.Option(
        help="--engine dask: the address of a running Dask scheduler (tcp://HOST:8786); "
        "default: a local cluster of --workers processes.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Records per chunk.")] = 1000,
    push_to_hub: Annotated[Optional[str], typer.Option(
        help="Also upload the data set to this Hub repo (online, needs a token).")] = None,
) -> None:
    """Curate product listings into the reference's prompts: price filter, scrubbing, token
    rule, balancing, train/test split. Writes a DatasetDict and OUT/report.json."""
    from pricer.data import balance as balancing
    from pricer.data import pipeline, store
    from pricer.data.prompts import prompt_format as check_format
    from pricer.data.report import show

    if (train_size or 0) < 0 or (test_size or 0) < 0:
        raise PricerError("--train-size and --test-size must be >= 0")
    if demo and (inputs or hub):
        raise PricerError("--demo builds its own data; leave out --input/--hub")
    check_format(prompt_format)
    if demo and prompt_format != "2024":
        raise PricerError("--demo writes the 2024 prompt format; leave out --prompt-format")
    if not demo and not inputs and not hub:
        raise PricerError("give --input PATH (or --hub CATEGORY, or --demo)")
    if engine not in ("processes", "dask"):
        raise PricerError(f"unknown engine '{engine}' (choose from processes, dask)")
    if scheduler is not None and engine != "dask":
        raise PricerError("--scheduler needs --engine dask")
    if demo and engine != "processes":
        raise PricerError("--demo builds its own data; leave out --engine")
    if (min_price > max_price or min_tokens > max_tokens or min(workers, chunk_size) < 1
            or (bucket_cap is not None and bucket_cap < 1)):
        raise PricerError("impossible settings: check price/token bounds, workers, chunk size, "
                          "bucket cap")
    columns = [c.strip() for col in (text_column or ["text"]) for c in col.split(",") if c.strip()]
    if not columns:
        raise PricerError("--text-column needs a column name")
    store.check_out(out, overwrite)  # before any long work
    # the cluster first: a scheduler that cannot be reached fails before the tokenizer loads
    with _engine(engine, scheduler, workers) as curate_map:
        tokenizer = _tokenizer(model)
        if demo:
            from pricer.data.demo import build_demo_catalog

            path = build_demo_catalog(out, train_size=4000 if train_size is None else train_size,
                                      test_size=500 if test_size is None else test_size,
                                      seed=seed, tokenizer=tokenizer, overwrite=overwrite)
            report = store.read_report(path)
        else:
            sizes = balancing.BalanceSettings(
                train_size=400_000 if train_size is None else train_size,
                test_size=2_000 if test_size is None else test_size,
                bucket_cap=bucket_cap, seed=seed, balance=balance)
            with _Bar() as bar:
                report = pipeline.build_dataset(
                    out, tokenizer=tokenizer, inputs=inputs or [], hub=hub or [], fmt=fmt,
                    text_columns=columns, price_column=price_column,
                    category_column=category_column, category=category, balance=sizes,
                    workers=workers, chunk_size=chunk_size, overwrite=overwrite,
                    progress=bar.update, engine=curate_map,
                    overrides=dict(min_price=min_price, max_price=max_price, min_chars=min_chars,
                                   min_tokens=min_tokens, max_tokens=max_tokens,
                                   prompt_format=prompt_format))
    show(report, console)
    _finish(report, Path(report["out"]), push_to_hub)


def _engine(engine: str, scheduler: str | None, workers: int):
    """A context giving the map that curates the chunks: None (local processes, the pipeline's
    default), or a Dask cluster's (`pricer.data.distributed`), closed at the end."""
    if engine == "processes":
        from contextlib import nullcontext

        return nullcontext()
    from pricer.data.distributed import DaskEngine

    return DaskEngine(scheduler, workers)


def _tokenizer(model: str):
    from pricer.models.load import load_tokenizer

    try:  # once, here: forked workers inherit it; a bad name fails early with one line
        return load_tokenizer(model)
    except PricerError:
        raise
    except Exception as e:
        raise PricerError(f"cannot load the tokenizer of '{model}': {e}") from None


class _Bar:
    """The Rich progress bar: one line per source, fed by the pipeline's progress callback."""

    def __init__(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold blue]curating {task.description}"), BarColumn(),
            TextColumn("{task.fields[read]:,} read, {task.fields[kept]:,} kept"),
            TimeElapsedColumn(), console=console)
        self.tasks: dict = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, done, total, *, source, read, kept):
        if source not in self.tasks:
            self.tasks[source] = self.progress.add_task(source, total=total, read=0, kept=0)
        self.progress.update(self.tasks[source], completed=done if total else None, read=read,
                             kept=kept)


def _finish(report: dict, path: Path, push_to_hub: str | None) -> None:
    if report["read"] == 0:
        console.print("[yellow]read 0 records: the input is empty[/]")
    elif report["kept"] == 0:
        console.print("[yellow]no item survived curation: see the drop reasons above[/]")
    console.print(f"[green]saved[/] {report['kept']:,} items to {path} (report: "
                  f"{path / 'report.json'})", soft_wrap=True)
    if push_to_hub:
        from pricer.data import store

        url = store.push_to_hub(store.load(path), push_to_hub)
        console.print(f"[green]pushed[/] to {url}")
