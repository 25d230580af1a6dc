"""How close the bf16 twin's changed greedy answers were (issue 19, part 1): the check margin of
the "checked" precision is chosen here, on TRAIN items, never the test split.

On items of train.jsonl the run was not trained on, greedy answers of the bf16 twin (the model
"checked" decides with) against fp32's; for each answer the twin changed, its margin (the
smallest top-1 minus top-2 log-probability among its tokens); for candidate margins, how many
answers would be recomputed in fp32 and how many changed answers would slip through.

    .venv/bin/python benchmarks/check_margin.py --run RUN --skip 1000 --items 200 --out FILE
"""

import argparse
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

from pricer.data.items import read_items
from pricer.predict.llm import load_llm_predictor

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-pricer" / "train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--skip", type=int, default=1000, help="train items to skip (trained on)")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    items = read_items(TRAIN)[args.skip:args.skip + args.items]
    exact = load_llm_predictor("greedy", adapter=args.run, precision="fp32").predict(items)
    checked = load_llm_predictor("greedy", adapter=args.run, precision="checked")
    twin = checked._batched(checked.encode(items)[0])  # the twin alone, nothing recomputed
    margins = [r["margin"] for r in twin]
    changed = sorted(m for m, r, e in zip(margins, twin, exact) if r["price"] != e)
    emit({"what": "bf16 twin vs fp32 greedy answers on train items: margins of the changed ones",
          "run": args.run, "items": f"train.jsonl[{args.skip}:{args.skip + args.items}]",
          "changed": len(changed), "changed_margins": [round(m, 4) for m in changed],
          "by_margin": {str(t): {"recomputed": sum(m < t for m in margins),
                                 "changed_kept": sum(m >= t for m in changed)}
                        for t in (0.02, 0.05, 0.1, 0.2, 0.3)},
          "machine": machine(), "load_average": load_average(),
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
          "command": f"benchmarks/check_margin.py --run {args.run} --skip {args.skip} "
                     f"--items {args.items}"}, args.out)


if __name__ == "__main__":
    main()
