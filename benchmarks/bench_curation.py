"""Curation speed: raw Amazon lines per second with the default tokenizer.

We have only six real raw records, so the benchmark file is made of real listings: each of the
14,326 items of ../shared/data/amazon-pricer/train.jsonl becomes a raw record (title = its first
line, description = the rest, its price as a string) that borrows the other fields (images,
videos, categories, details...) of one of the six real raw records in turn, so lines have the
real size (~3.5 kB) and layout. Every line has a price, the worst case (unpriced lines are cheap).

    .venv/bin/python benchmarks/bench_curation.py [--lines 20000] [--workers 2]
    .venv/bin/python benchmarks/bench_curation.py --lines 1000000 --no-baseline   # 3.4 GB file

Runs one process (baseline) and `--workers` processes on the same file, and prints both rates:
wall-clock lines/s, and CPU seconds per line (this process + its workers), which says what the
cores can do when the machine is shared and wall-clock time is not ours alone; and the peak
resident memory of this process and of its largest worker (getrusage), which shows that the
file is streamed: what grows with the file is only the list of curated items kept for balancing.
Ends with one JSON line (both runs, the machine, the load; `--out FILE` writes it there too).
`PYTHONPATH=OTHER/src` runs an older checkout's curation on the same file.
"""

import argparse
import json
import os
import resource
import tempfile
import time
from datetime import datetime, timezone
from itertools import cycle
from pathlib import Path

from report import emit, load_average, machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def make_raw_file(path: Path, lines: int, unpriced_every: int = 0) -> None:
    """`lines` raw Amazon-shaped records (the raw sample's fields, train.jsonl's texts and
    prices, cycled); every `unpriced_every`-th without a price (0: all priced)."""
    raw = [json.loads(line) for line in
           (DATA / "amazon-raw-sample" / "raw_meta_jsonl_format.jsonl").read_text().splitlines()]
    items = [json.loads(line) for line in
             (DATA / "amazon-pricer" / "train.jsonl").read_text().splitlines()]
    with open(path, "w") as f:
        for n, item, shape in zip(range(lines), cycle(items), cycle(raw)):
            title, _, rest = item["text"].partition("\n")
            unpriced = unpriced_every and n % unpriced_every == unpriced_every - 1
            price = None if unpriced else str(item["price"])
            record = dict(shape, title=title, description=[rest], features=[], price=price,
                          parent_asin=f"B{n:09d}")
            f.write(json.dumps(record) + "\n")


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of the largest finished child (workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, kids / 1024  # Linux: kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the one-process run (for big files)")
    parser.add_argument("--out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args()

    from pricer.data import pipeline
    from pricer.models.load import load_tokenizer

    tokenizer = load_tokenizer("default")  # warm: counted in neither run
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw_meta_Bench.jsonl"
        make_raw_file(path, args.lines)
        size = path.stat().st_size
        print(f"{args.lines:,} raw lines, {size / 1e6:.1f} MB ({size / args.lines:,.0f} B/line)")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"peak memory after writing the file: {peak_mb()[0]:,.0f} MB")
        rates, result = {}, {"benchmark": "bench_curation", "lines": args.lines,
                             "file_mb": round(size / 1e6, 1), "src": pipeline.__file__,
                             "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                             "machine": machine(), "load_average_before": load_average()}
        runs = (args.workers,) if args.no_baseline else (1, args.workers)
        for workers in runs:
            start, cpu = time.perf_counter(), cpu_seconds()
            items, read, dropped, _ = pipeline.curate_source(
                path, "amazon-raw", tokenizer=tokenizer, workers=workers)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            rates[workers] = read / seconds
            print(f"workers={workers}: {read:,} read, {len(items):,} kept, "
                  f"{dict((k, v) for k, v in dropped.items() if v)} in {seconds:.1f} s "
                  f"-> {rates[workers]:,.0f} raw lines/s; {1000 * cpu / read:.2f} CPU ms/line "
                  f"(= {read / cpu:,.0f} lines per CPU-second)")
            own, kids = peak_mb()
            print(f"  peak memory: this process {own:,.0f} MB ({len(items):,} curated items "
                  f"held), largest worker {kids:,.0f} MB; load average now "
                  f"{os.getloadavg()[0]:.1f}")
            result[f"workers_{workers}"] = {
                "seconds": round(seconds, 2), "raw_lines_per_s": round(rates[workers]),
                "cpu_ms_per_line": round(1000 * cpu / read, 3), "read": read, "kept": len(items),
                "load_average_after": load_average()}
            del items
        if len(runs) == 2:
            print(f"speed-up {args.workers} workers vs 1: {rates[args.workers] / rates[1]:.2f}x")
            result["speedup_workers_vs_1"] = round(rates[args.workers] / rates[1], 2)
    emit(result, args.out)


if __name__ == "__main__":
    main()
