"""Heads that share their bottom layers, priced together against one after the other (issue 19,
part 2): two `--head regression` runs on the same base with LoRA on their top layers only; both
sides price the same test items in the same run, and their prices must be identical.

    .venv/bin/python benchmarks/bench_shared_heads.py --head runs/amazon-head-2 \\
        --head runs/amazon-head --items 256 --out docs/measurements/shared_heads_cpu_amd_epyc.json
"""

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

TEST = Path(__file__).resolve().parents[2] / "shared/data/amazon-pricer/test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", action="append", required=True, help="a head run (twice or more)")
    parser.add_argument("--items", type=int, default=256, help="the first N items of test.jsonl")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from pricer.data.prompts import test_prompt
    from pricer.predict.head import predict_heads, shared_groups
    from pricer.predict.registry import make_predictor

    heads = [make_predictor("head", adapter=run, precision=args.precision) for run in args.head]
    if [len(g) for g in shared_groups(heads)] != [len(heads)]:
        raise SystemExit("these heads do not share their bottom layers")
    items = [test_prompt(json.loads(line)["text"]) for line in TEST.open()][:args.items]
    heads[0].predict(items[:8])  # warm up
    load = [load_average()]
    started = time.perf_counter()
    alone = [head.predict(items) for head in heads]
    one_after_the_other = time.perf_counter() - started
    started = time.perf_counter()
    together = predict_heads(heads, items)
    shared = time.perf_counter() - started
    load.append(load_average())
    emit({"what": "heads sharing their bottom layers (pricer.predict.head.predict_heads, as an "
                  "ensemble runs them) against each head alone, same items, same run",
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": machine(),
          "load_average": load, "items": len(items), "heads": args.head,
          "precision": heads[0].info["precision"], "threads": torch.get_num_threads(),
          "layers": heads[0].head.config.num_layers, "shared_layers": heads[0].base_layers,
          "one_after_the_other_s": round(one_after_the_other, 2), "together_s": round(shared, 2),
          "speedup": round(one_after_the_other / shared, 2),
          "identical_prices": together == alone,
          "command": "benchmarks/bench_shared_heads.py " + " ".join(
              [f"--head {h}" for h in args.head] + [f"--items {args.items}",
                                                    f"--precision {args.precision}"]
              + ([f"--threads {args.threads}"] if args.threads else []))},
         args.out)


if __name__ == "__main__":
    main()
