"""Speed of the evaluation harness and of the embedding step (run by hand).

    .venv/bin/python benchmarks/bench_eval.py [--embed N]

1. the harness on a constant predictor over 2,000 real items: scoring only, with the Rich
   per-item table rendered (to a null console), and with the result JSON + chart written
   (targets, formerly a wall-clock test: scoring < 0.5 s, with the table < 2 s on 2 shared cores);
2. all-MiniLM-L6-v2 embedding throughput on N real descriptions (default 256).
"""

import argparse
import io
import tempfile
import time
from pathlib import Path

from rich.console import Console

from pricer.data.items import read_items
from pricer.data.prompts import description
from pricer.evaluate.harness import evaluate
from pricer.predict.simple import ConstantPredictor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon-pricer"


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--embed", type=int, default=256)
    args = parser.parse_args()
    items = (read_items(DATA / "test.jsonl") * 3)[:2000]
    quiet = Console(file=io.StringIO(), width=120)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate(ConstantPredictor(200), items[:10], results_dir=tmp, show=False)  # warm imports
        rows = [
            ("scoring only (show=False)", timed(lambda: evaluate(ConstantPredictor(200), items,
                                                                 size=2000, show=False))),
            ("with the per-item table", timed(lambda: evaluate(ConstantPredictor(200), items,
                                                               size=2000, console=quiet))),
            ("with JSON + chart files", timed(lambda: evaluate(ConstantPredictor(200), items,
                                                               size=2000, show=False,
                                                               results_dir=tmp))),
        ]
    targets = {"scoring only (show=False)": 0.5, "with the per-item table": 2.0}
    for label, seconds in rows:
        target = targets.get(label)
        verdict = "" if target is None else f"  (target < {target} s: {'ok' if seconds < target else 'SLOW'})"
        print(f"constant, 2,000 items, {label:<28} {seconds:7.3f} s{verdict}")
    if args.embed:
        from pricer.predict.baselines import embed, encoder

        texts = [description(i.prompt) for i in read_items(DATA / "train.jsonl", split="train")]
        texts = texts[:args.embed]
        encoder()
        embed(texts[:8], cache_from=10**9)  # warm up
        start = time.perf_counter()
        embed([t + " " for t in texts], cache_from=10**9)  # new strings: no memo hit
        seconds = time.perf_counter() - start
        print(f"embedding {len(texts)} descriptions: {seconds:.1f} s "
              f"({len(texts) / seconds:.1f} texts/s)")


if __name__ == "__main__":
    main()
