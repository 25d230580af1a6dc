"""Bounded work per item: `pricer predict --run RUN` on one 5 MB description, wall time and peak
memory, for this tree and (with --before SRC) another tree in the same run.

    python benchmarks/bench_huge_description.py --run runs/quickstart/adapter \
        --before /tmp/before/src --out docs/measurements/huge_description_cpu_amd_epyc.json

The description is cut to the run's max_length (pricer.predict.prompting) before it is
tokenised, so it costs what a normal one does; before that change it was cut to the model's
8,192-token context and read in one full-context forward pass.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit  # one JSON line, as every benchmark
from same_figures import machine

ROOT = Path(__file__).resolve().parents[1]


def price_once(src: Path, run: str, text_file: Path) -> dict:
    """Wall seconds, peak resident memory (MB) and the answer of one `pricer predict`."""
    env = os.environ | {"PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with open(text_file) as stdin:
        done = subprocess.run([sys.executable, "-m", "pricer", "predict", "--adapter", run,
                               "--model", "default"], stdin=stdin, capture_output=True, text=True,
                              cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB, the largest child so far
    if done.returncode:
        raise SystemExit(f"{src}: pricer predict failed: {done.stderr[-500:]}")
    return {"src": str(src), "seconds": round(seconds, 1), "peak_rss_mb": round(peak / 1024),
            "peak_is_this_run": peak > before, "answer": done.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a LoRA run folder (pricer train --out)")
    parser.add_argument("--before", type=Path, help="the src/ of another tree, measured second")
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    words = " ".join(f"word{i % 97}" for i in range(int(args.mb * 150_000)))
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "huge.txt"
        text.write_text("Huge listing\n" + words)
        result = {"benchmark": "bench_huge_description", "description_mb": round(len(words) / 1e6, 1),
                  "run": args.run, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "machine": machine(), "load_before": round(os.getloadavg()[0], 2)}
        # this tree first: the peak of the children is then its own (ru_maxrss is the largest)
        result["after"] = price_once(ROOT / "src", args.run, text)
        if args.before:
            result["before"] = price_once(args.before, args.run, text)
    emit(result, args.out)


if __name__ == "__main__":
    main()
