"""Seconds per item of one predictor at several batch sizes (items per forward pass), on the same
test prompts in one process: how large a forward pass pays on this machine.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_predict_batch.py --predictor greedy \
        --model default --adapter runs/amazon-smollm2 --items 32 --batch-sizes 16,32,16,12,8 --singles 3

Prints one JSON object. The first warm-up call (4 items) is not timed.
"""

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "amazon-pricer" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictor", default="greedy")
    parser.add_argument("--model", default="default")
    parser.add_argument("--adapter")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--batch-sizes", default="16,32,16,12,8")
    parser.add_argument("--singles", type=int, default=3, help="items priced one at a time")
    args = parser.parse_args()

    from pricer.data.items import read_items
    from pricer.predict.registry import make_predictor

    prompts = [i.prompt for i in read_items(TEST)][:args.items]
    predictor = make_predictor(args.predictor, model=args.model, adapter=args.adapter,
                               precision=args.precision, device="cpu")
    predictor.predict(prompts[:4])  # warm-up
    tokens = [len(predictor.tokenizer(p).input_ids) for p in prompts]
    report = {"load_before": os.getloadavg()[0], "items": len(prompts),
              "tokens": {"min": min(tokens), "mean": sum(tokens) / len(tokens), "max": max(tokens)},
              "runs": []}
    sizes = [int(b) for b in args.batch_sizes.split(",")] + [1]
    for size in sizes:
        predictor.batch_size = size
        chosen = prompts if size > 1 else prompts[:args.singles]
        started = time.perf_counter()
        if size > 1:
            predictor.predict(chosen)
        else:
            for p in chosen:
                predictor.predict([p])
        seconds = time.perf_counter() - started
        report["runs"].append({"batch_size": size, "items": len(chosen),
                               "s_per_item": round(seconds / len(chosen), 3)})
    report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
