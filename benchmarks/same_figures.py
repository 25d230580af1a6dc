"""Same figures before and after a refactor: the demo, the regression head with a fixed
--max-steps, and three baselines on all 748 test items, run on a given source tree.

    git worktree add /tmp/before <commit>                    # the code before
    python benchmarks/same_figures.py run --src /tmp/before --out /tmp/figures-before
    python benchmarks/same_figures.py run --src .           --out /tmp/figures-after
    python benchmarks/same_figures.py compare /tmp/figures-before /tmp/figures-after > out.json

`run` calls the `pricer` command of that tree (PYTHONPATH=SRC/src, from the repository root, so
the shipped configs' relative paths hold) and is slow (the demo trains for minutes); `compare`
prints one JSON line: per result both sides, and whether they are equal to rounding (cents).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from report import machine

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "../shared/data/amazon-pricer/train.jsonl"
TEST = "../shared/data/amazon-pricer/test.jsonl"
STEPS = [
    ("demo", ["demo", "--out", "{out}/demo"]),
    ("head", ["train", "--config", "amazon-head", "--max-steps", "20", "--out", "{out}/head",
              "--results", "{out}/head-results"]),
    ("baselines", ["baselines", "--train", TRAIN, "--test", TEST, "--holdout", "1000",
                   "--eval-size", "all", "--results", "{out}/baselines",
                   "--only", "constant,features-lr,bow-lr"]),
]
RESULTS = {"demo": "demo/results", "head": "head-results", "baselines": "baselines"}


def run(src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONPATH": str(src.resolve() / "src")}
    for name, args in STEPS:
        command = [sys.executable, "-m", "pricer"] + [a.format(out=out.resolve()) for a in args]
        with open(out / f"{name}.log", "w") as log:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise SystemExit(f"{name} failed ({done.returncode}); see {out / name}.log")


def figures(out: Path) -> dict:
    found = {}
    for step, folder in RESULTS.items():
        for path in sorted((out / folder).glob("*.json")):
            result = json.loads(path.read_text())
            if "predictor" in result and "error" in result:
                found[f"{step}: {result['predictor']}"] = {
                    "n": result["n"], "error": round(result["error"], 2),
                    "rmsle": round(result["rmsle"], 4), "hits": round(result["hits"], 1)}
    return found




def compare(before: Path, after: Path) -> dict:
    a, b = figures(before), figures(after)
    return {"machine": machine(),
            "same": a == b, "before": a, "after": b,
            "differ": sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("run")
    one.add_argument("--src", type=Path, required=True)
    one.add_argument("--out", type=Path, required=True)
    two = sub.add_parser("compare")
    two.add_argument("before", type=Path)
    two.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.what == "run":
        run(args.src, args.out)
    else:
        print(json.dumps(compare(args.before, args.after)))


if __name__ == "__main__":
    main()
