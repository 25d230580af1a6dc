"""The curation report of every run: what was read, kept and dropped (and why), price and
token-length statistics, per-category counts. Printed as a Rich table, saved as report.json.

Invariant: read == kept + sum(dropped.values()); kept == train + test.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from pricer.data.curate import DROP_REASONS

# Reasons that come after curation: removed by price balancing / beyond train+test sizes.
SPLIT_REASONS = ("balanced_out", "not_in_split")


@dataclass
class Curated:
    """One curated item: the description text (title line + contents), price, category and the
    number of tokens of `text` with the chosen tokenizer."""
    text: str
    price: float
    category: str | None
    tokens: int


def stats(values) -> dict:
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        return {"count": 0}
    return {"count": int(values.size), "mean": round(float(values.mean()), 2),
            "std": round(float(values.std()), 2), "min": round(float(values.min()), 2),
            "median": round(float(np.median(values)), 2), "max": round(float(values.max()), 2)}


def build(source: str, fmt: str, settings: dict, read: int, dropped: Counter, train: list,
          test: list, **extra) -> dict:
    reasons = {r: int(dropped.get(r, 0)) for r in DROP_REASONS + SPLIT_REASONS}
    reasons |= {r: int(n) for r, n in dropped.items() if r not in reasons}
    both = train + test
    return {
        "source": source, "format": fmt,
        "read": int(read), "kept": len(both), "dropped": reasons,
        "curated": int(read) - sum(dropped.get(r, 0) for r in reasons if r not in SPLIT_REASONS),
        "splits": {"train": len(train), "test": len(test)},
        "price": {"all": stats(i.price for i in both), "train": stats(i.price for i in train),
                  "test": stats(i.price for i in test)},
        "tokens": stats(i.tokens for i in both),
        "categories": {
            "train": dict(Counter(i.category or "(none)" for i in train).most_common()),
            "test": dict(Counter(i.category or "(none)" for i in test).most_common()),
        },
        "settings": settings, **extra,
    }


def show(report: dict, console=None) -> None:
    """The report as coloured Rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.print(f"[bold]source:[/] {report['source']}", soft_wrap=True, highlight=False)
    counts = Table(title="Curation report", title_style="bold")
    counts.add_column("rows", style="bold")
    counts.add_column("count", justify="right")
    counts.add_row("read", f"{report['read']:,}")
    counts.add_row("[green]kept[/]", f"[green]{report['kept']:,}[/]")
    splits = report["splits"]
    counts.add_row("  train / test", f"{splits['train']:,} / {splits['test']:,}")
    for reason, n in report["dropped"].items():
        if n:
            counts.add_row(f"[red]dropped: {reason}[/]", f"[red]{n:,}[/]")
    console.print(counts)

    numbers = Table(title="Prices and lengths", title_style="bold")
    numbers.add_column("")
    for col in ("count", "mean", "std", "min", "median", "max"):
        numbers.add_column(col, justify="right")
    for name, s in (("price train ($)", report["price"]["train"]),
                    ("price test ($)", report["price"]["test"]),
                    ("tokens (text)", report["tokens"])):
        numbers.add_row(name, *[f"{s[c]:,}" if c in s else "-" for c in
                                ("count", "mean", "std", "min", "median", "max")])
    console.print(numbers)

    cats = Table(title="Categories", title_style="bold")
    cats.add_column("category", style="cyan")
    cats.add_column("train", justify="right")
    cats.add_column("test", justify="right")
    train, test = report["categories"]["train"], report["categories"]["test"]
    for name in list(dict.fromkeys(list(train) + list(test)))[:20]:
        cats.add_row(name, f"{train.get(name, 0):,}", f"{test.get(name, 0):,}")
    console.print(cats)
