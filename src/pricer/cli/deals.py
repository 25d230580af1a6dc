"""`pricer deals` (issue 21): price a feed of offers, report the real bargains, remember, notify."""

import csv
import json
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from pricer.cli.evaluate import DEFAULT_RESULTS
from pricer.cli.predictor import chosen_predictor, options_of, with_predictor_flags
from pricer.errors import PricerError

FORMATS = ("table", "json", "csv")
CSV_COLUMNS = ("rank", "discount", "saving", "price", "estimate", "p10", "p50", "p90", "title",
               "url", "source", "key")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds_of(text: str) -> float:
    """--every: "90", "90s", "10m", "1h", "1d" -> seconds (at least 1)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not match:
        raise PricerError(f"--every must be a duration like 30s, 10m or 1h, got {text!r}")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds < 1:
        raise PricerError(f"--every must be at least 1 second, got {text!r}")
    return seconds


def _fields(pairs: list[str] | None) -> dict:
    fields = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PricerError(f"--notify-field {pair!r}: write it as key=value (e.g. topic=deals)")
        fields[key.strip()] = value
    return fields


def _money(x) -> str:
    return "" if x is None else f"${x:,.2f}"


def _table(deals: list[dict], rule) -> None:
    from rich.table import Table

    t = Table(title=f"{len(deals)} new deal{'s' * (len(deals) != 1)} "
                    f"(at least {rule.text}{'' if rule.share else ' dollars'} under the estimate)",
              header_style="bold")
    for column in ("#", "off", "saving", "price", "estimate", "likely (p10-p90)", "offer"):
        t.add_column(column, justify="left" if column == "offer" else "right",
                     overflow="fold" if column == "offer" else "ellipsis")
    for n, d in enumerate(deals, 1):
        spread = f"{_money(d['p10'])}-{_money(d['p90'])}" if d["p10"] is not None else ""
        offer = escape(d["title"][:80]) + (f"\n[dim]{escape(d['url'])}[/]" if d["url"] else "")
        t.add_row(str(n), f"{d['discount']:.0%}", _money(d["saving"]), _money(d["price"]),
                  _money(d["estimate"]), spread, offer)
    Console(soft_wrap=False).print(t)


def _emit(fmt: str, rule, first: list):
    """The callback that writes a scan's new deals to stdout in `fmt` (flushed before return)."""
    def emit(deals: list[dict]) -> None:
        if fmt == "table":
            if deals:
                _table(deals, rule)
        elif fmt == "json":  # one object per scan (JSON Lines when polling)
            sys.stdout.write(json.dumps({"deals": [
                {"rank": n, **{k: d[k] for k in CSV_COLUMNS if k != "rank"}}
                for n, d in enumerate(deals, 1)]}, allow_nan=False) + "\n")
        else:
            writer = csv.writer(sys.stdout)
            if not first:
                writer.writerow(CSV_COLUMNS)
            for n, d in enumerate(deals, 1):
                writer.writerow([n, *(d[k] for k in CSV_COLUMNS[1:])])
        first.append(True)
        sys.stdout.flush()
    return emit


def _summary(counts) -> str:
    parts = [f"{counts['entries']} entries", f"{counts['priced']} priced",
             f"{counts['seen_before']} seen before", f"{counts['deals']} new deals"]
    names = {"no_price": "without a price", "duplicate": "duplicates", "malformed": "malformed feeds",
             "timeout": "timed out", "unreachable": "unreachable", "bad_row": "bad rows",
             "predictor": "predictor failures", "notified": "notified",
             "notify_failed": "notifications failed",
             "notify_attempts_failed": "failed notify attempts"}
    parts += [f"{counts[k]} {label}" for k, label in names.items() if counts.get(k)]
    return "scan: " + ", ".join(parts)


@with_predictor_flags
def deals(
    sources: Annotated[list[str], typer.Argument(
        help="Feeds (RSS 2.0 / Atom, an http(s) URL or a file) and offer files (.jsonl / .csv "
             "with title, description, price, url).")],
    min_discount: Annotated[str, typer.Option(
        help="How far under the estimate an offer must be: a share (30%) or dollars (50, the "
             "course's threshold).")] = "30%",
    output: Annotated[str, typer.Option("--format", help="table, json (one object per scan) "
                                                         "or csv, on stdout.")] = "table",
    state: Annotated[Optional[Path], typer.Option(
        help="The SQLite memory of offers seen and deals reported (default "
             "RESULTS/deals.sqlite).")] = None,
    results: Annotated[Path, typer.Option(help="Results folder (for the default --state).")] = DEFAULT_RESULTS,
    every: Annotated[Optional[str], typer.Option(
        help="Scan again every DURATION (30s, 10m, 1h) until Ctrl+C / SIGTERM.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a feed's server.")] = 10.0,
    notify: Annotated[Optional[str], typer.Option(
        help="POST each new deal as JSON to this webhook (ntfy, Slack, Pushover...).")] = None,
    notify_field: Annotated[Optional[list[str]], typer.Option(
        help="Extra key=value in the webhook's JSON (ntfy: topic=NAME; Pushover: token=..., "
             "user=...), repeatable.")] = None,
    notify_retries: Annotated[int, typer.Option(help="Retries of a failed notification.")] = 3,
    notify_timeout: Annotated[float, typer.Option(help="Seconds per notification attempt.")] = 10.0,
    notify_backoff: Annotated[float, typer.Option(help="Seconds before the first retry (then "
                                                       "doubled each time).")] = 1.0,
    **chosen,
) -> None:
    """Find the offers priced well under their estimated value in feeds and offer files; each
    deal is reported once (the --state memory), optionally pushed to a webhook."""
    from pricer.deals.notify import Webhook
    from pricer.deals.scan import poll, scan
    from pricer.deals.state import Rule, State

    err = Console(stderr=True)
    if output not in FORMATS:
        raise PricerError(f"--format must be one of {', '.join(FORMATS)}, got {output!r}")
    rule = Rule(min_discount)
    seconds = seconds_of(every) if every is not None else None
    if timeout <= 0 or notify_timeout <= 0 or notify_retries < 0 or notify_backoff < 0:
        raise PricerError("--timeout and --notify-timeout must be above 0, --notify-retries and --notify-backoff 0 or more")
    for source in sources:
        if not re.match(r"https?://", source) and not Path(source).is_file():
            raise PricerError(f"{source}: no such file (give a feed URL or a feed/offer file)")
        if re.match(r"\w+://", source) and not re.match(r"https?://", source):
            raise PricerError(f"{source}: only http(s) URLs are read")
    if notify and not re.match(r"https?://", notify):
        raise PricerError(f"--notify {notify!r}: give an http(s) URL")
    webhook = (Webhook(notify, timeout=notify_timeout, retries=notify_retries, backoff=notify_backoff,
                       fields=_fields(notify_field)) if notify else None)
    options_of(chosen["opt"], {})  # a bad --opt fails before anything is read
    memory = State(state or results / "deals.sqlite")

    if chosen["predictor"] is None and chosen["run"] is None:
        raise PricerError("give the predictor that estimates values: --predictor NAME or --run PATH")
    with err.status(f"loading {chosen['predictor'] or chosen['run']}") as status:
        priced_by, _ = chosen_predictor(chosen, status=status.update)

    stop = threading.Event()
    first: list = []

    def on_problem(problem) -> None:
        err.print(f"[yellow]{escape(str(problem))}[/]", highlight=False, soft_wrap=True)

    def scan_once() -> None:
        with err.status("scanning") as status:
            counts = scan(sources, priced_by, memory, rule, timeout=timeout,
                          emit=_emit(output, rule, first), webhook=webhook,
                          on_problem=on_problem, stop=stop.is_set,
                          progress=lambda done, total: status.update(f"priced {done}/{total}"))
        err.print(_summary(counts), highlight=False, soft_wrap=True)

    try:
        if seconds is None:
            scan_once()
            return

        def graceful(signum, frame):
            err.print("[yellow]stopping: the scan in progress ends after its current step[/]",
                      highlight=False)
            stop.set()

        previous = {s: signal.signal(s, graceful) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            scans = poll(scan_once, seconds, stop,
                         on_wait=lambda s: err.print(f"next scan in {every} (Ctrl+C stops)",
                                                     highlight=False))
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        err.print(f"stopped after {scans} scan{'s' * (scans != 1)}; state: {memory.path}",
                  highlight=False)
    finally:
        memory.close()
