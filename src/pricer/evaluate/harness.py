"""The reference's Tester: score a predictor on the first N test items, show it, save it.

`evaluate` predicts in batches (LLM predictors are batched); if a batch raises, it retries that
batch one item at a time so that only the failing items become errors (scored as misses).
Items whose truth is missing, <= 0 (no log) or above the data's curation bound (`max_price`:
the CLI passes the data set's own, $999.49 for a plain file as the reference; a $1e12 truth is a
data error, not an item to score) are skipped, counted and listed with the reason. A run where every item raised is an error (nothing is written); a run
where some raised is flagged (`failed` in the result, and in the leaderboard).
The harness uses only the predictor contract (pricer.predict.base.Predictor).
Output: a coloured per-item table and a summary line (Rich), two charts (the truth-vs-estimate
scatter on log-log axes, and the error by price band; pricer.evaluate.charts), and a result JSON
that `pricer leaderboard` gathers.
"""

import datetime
import hashlib
import json
import math
import numbers
import re
import time
from pathlib import Path

from pricer.data.items import fingerprint
from pricer.errors import PricerError, writing
from pricer.predict.metrics import GREEN, ORANGE, RED, headline, score, summarise

STYLES = {GREEN: "green", ORANGE: "dark_orange", RED: "red"}
REFERENCE_ID_PREFIX = "official-"  # ids of the reference's own test split in ../shared/data


def title_of(text: str, width: int = 40) -> str:
    """The start of the item's title (first line of its description), as the reference printed."""
    line = text.split("\n", 1)[0]
    return line if len(line) <= width else line[:width] + "..."


def _predict_all(predictor, items, batch_size, on_batch):
    """Guesses for all items, and {position: error message} for items whose prediction raised."""
    guesses, errors = [], {}
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        try:
            out = list(predictor.predict(batch))
            if len(out) != len(batch):
                raise ValueError(f"predictor returned {len(out)} guesses for {len(batch)} items")
        except PricerError:
            raise  # the user's mistake (e.g. a missing setting): stop with its message
        except Exception:
            out = []
            for offset, item in enumerate(batch):  # find the culprits, keep everything else
                try:
                    out.append(predictor.predict([item])[0])
                except PricerError:
                    raise
                except Exception as e:
                    errors[start + offset] = f"{type(e).__name__}: {e}"[:300]
                    out.append(None)
        guesses.extend(out)
        on_batch(len(batch))
    return guesses, errors


def _json_number(value):
    """JSON has no NaN/inf: keep numbers and strings, write anything else as its repr."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return value if isinstance(value, int) else float(value)  # numpy scalars too
    return repr(value)


def chart(rows: list[dict], title: str, path: Path) -> Path:
    """The truth-vs-estimate scatter (log-log, hit colours, y=x): `pricer.evaluate.charts.scatter`."""
    from pricer.evaluate.charts import scatter

    return scatter(rows, title, path)


def _table(rows, skipped, console):
    """The coloured per-item table, one line per item as the reference printed it. Built as one
    Rich Text of aligned columns: a rich.Table measures every cell (~2 ms a row, seconds for
    2,000 items), this takes a fraction of that."""
    from rich.text import Text

    cells = []
    for r in rows:
        guess = f"${r['scored_guess']:,.2f}" if r["valid"] else f"none:{r['guess']!s:.8}"
        cells.append(([str(r["index"] + 1), guess, f"${r['truth']:,.2f}", f"${r['error']:,.2f}",
                       f"{r['sle']:,.2f}"], r["title"], STYLES[r["colour"]]))
    for s in skipped:
        cells.append(([str(s["index"] + 1), "-", "-", "-", "-"], f"skipped: {s['reason']}", "dim"))
    header = ["#", "guess", "truth", "error", "sle"]
    widths = [max([len(h)] + [len(c[0][i]) for c in cells]) for i, h in enumerate(header)]
    text = Text()
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    text.append(f"{line}  item\n", style="bold")
    for row, title, style in cells:
        line = "  ".join(n.rjust(w) for n, w in zip(row, widths))
        text.append(f"{line}  {title}\n", style=style)
    console.print(text, end="", no_wrap=True, overflow="ellipsis", highlight=False)


def check_results_dir(results_dir: str | Path | None) -> None:
    """Refuse a results folder that is a file (before any work)."""
    if results_dir is not None and Path(results_dir).exists() and not Path(results_dir).is_dir():
        raise PricerError(f"{results_dir}: is a file, expected a results folder")


def evaluate(predictor, items, size: int | None = 250, name: str | None = None,
             results_dir: str | Path | None = None, data_fingerprint: str | None = None,
             show: bool = True, console=None, batch_size: int | None = None,
             max_price: float | None = None, extra: dict | None = None,
             progress: bool | None = None) -> dict:
    """Score `predictor` on the first `size` items (all when None) the reference's way.

    Returns the result dict (`error`, `rmsle`, `hits`, `n`, `predictor`, `settings`, per-item
    rows, skipped items, errors, `failed`, timing). With `results_dir`, also writes
    `<name>-<data>-<settings>.json`, `.png` (scatter) and `-bands.png` there. `console`: where tables go (stdout by
    default; the CLI's --json uses stderr). `max_price`: truths above it are skipped (None: no
    bound). `extra`: more keys for the result (e.g. fit timing), written with it. `progress`:
    show the progress bar (default: when `show`; `pricer demo` shows only the bar).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    name = name or predictor.name
    if size is not None and size < 1:
        raise PricerError(f"--eval-size must be at least 1, got {size}")
    if batch_size is not None and batch_size < 1:
        raise PricerError(f"--batch-size must be at least 1, got {batch_size}")
    check_results_dir(results_dir)
    chosen = list(items)[:size] if size is not None else list(items)
    if not chosen:
        raise PricerError("no items to evaluate (the test split is empty)")
    skipped, scored_items = [], []
    for index, item in enumerate(chosen):
        if item.price is None:
            skipped.append({"index": index, "id": item.id, "reason": "no price (missing or not a number)"})
        elif item.price <= 0:
            skipped.append({"index": index, "id": item.id,
                            "reason": f"price {item.price} <= 0 (log undefined)"})
        elif max_price is not None and item.price > max_price:
            skipped.append({"index": index, "id": item.id,
                            "reason": f"price {item.price:g} above the curation bound ${max_price:g}"})
        else:
            scored_items.append((index, item))
    if not scored_items:
        raise PricerError(f"none of the {len(chosen)} items has a usable price to compare with "
                          f"(above 0{f' and at most ${max_price:g}' if max_price else ''})")
    to_price = [item for _, item in scored_items]
    batch_size = batch_size or predictor.batch_size
    start = time.perf_counter()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=not ((show if progress is None else progress)
                               and console.is_terminal)) as bar:
        task = bar.add_task(f"evaluating {name}", total=len(to_price))
        guesses, errors = _predict_all(predictor, to_price, batch_size,
                                       lambda n: bar.advance(task, n))
    seconds = time.perf_counter() - start
    if len(errors) == len(to_price):
        raise PricerError(f"{name}: every item failed, nothing scored (first: "
                          f"{next(iter(errors.values()))})")

    rows, scores = [], []
    for position, ((index, item), guess) in enumerate(zip(scored_items, guesses)):
        s = score(guess, item.price)
        scores.append(s)
        rows.append({"index": index, "id": item.id, "guess": _json_number(guess),
                     "scored_guess": s.guess, "truth": s.truth, "error": s.error, "sle": s.sle,
                     "colour": s.colour, "valid": s.valid, "title": title_of(item.text),
                     **({"exception": errors[position]} if position in errors else {})})
    summary = summarise(scores)
    fp = data_fingerprint or fingerprint(chosen)
    result = {
        "predictor": name,
        "settings": predictor.settings(),
        **summary,
        "failed": len(errors),
        "size": len(chosen),
        "skipped": skipped,
        "errors": [{"index": r["index"], "id": r["id"], "error": r["exception"]}
                   for r in rows if "exception" in r],
        "data": {"fingerprint": fp,
                 "reference": all(item.id.startswith(REFERENCE_ID_PREFIX) for item in chosen)},
        "timing": {"seconds": seconds, "items_per_second": len(to_price) / seconds if seconds else None},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
        "items": rows,
    }
    title = headline(name, summary)
    if show:
        _table(rows, skipped, console)
        extras = [f"{summary['n']} scored"]
        if summary["invalid"]:
            extras.append(f"[red]{summary['invalid']} without a usable guess (scored as misses)[/]")
        if skipped:
            extras.append(f"[yellow]{len(skipped)} skipped[/]")
        if errors:
            extras.append(f"[red]{len(errors)} failed (scored as misses)[/]")
        extras.append(f"{seconds:.2f} s")
        console.print(f"[bold]{title}[/]  ({', '.join(extras)})", highlight=False, soft_wrap=True)
    if results_dir is not None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "predictor"
        settings = hashlib.sha256(json.dumps(result["settings"], sort_keys=True,
                                             default=str).encode()).hexdigest()[:6]
        base = Path(results_dir) / f"{slug}-{fp[:8]}-{settings}"  # one file per predictor+data
        from pricer.evaluate.charts import bands

        with writing(results_dir):
            result["chart"] = str(chart(rows, title, Path(f"{base}.png")))
            result["bands_chart"] = str(bands(rows, f"{name}: error by price band",
                                              Path(f"{base}-bands.png")))
        result["file"] = f"{base}.json"
        with writing(result["file"]):
            Path(result["file"]).write_text(json.dumps(result, indent=1, allow_nan=False, default=str))
    return result
