"""Two predictors on the same items: the mean of their per-item absolute-error differences, with a
paired bootstrap 95 % interval (a tighter test than comparing the two separate intervals).

    .venv/bin/python benchmarks/paired_errors.py RESULTS/a-*.json RESULTS/b-*.json [--out FILE]

Reads the result JSONs that `pricer eval --results DIR` writes (their per-item rows); prints ONE
JSON line (a minus b: negative means a is closer); `--out` writes it to a file too.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from report import emit


def errors(path: Path) -> tuple[str, dict]:
    result = json.loads(path.read_text())
    return result["predictor"], {item["id"]: item["error"] for item in result["items"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args()
    (name_a, a), (name_b, b) = errors(options.a), errors(options.b)
    if set(a) != set(b):
        raise SystemExit("error: the two results scored different items")
    ids = sorted(a)
    diff = np.array([a[i] - b[i] for i in ids])
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), (options.draws, len(diff)))].mean(axis=1)
    emit({"benchmark": "paired_errors", "a": name_a, "b": name_b, "n": len(ids),
          "mean_error_a": round(float(np.mean([a[i] for i in ids])), 2),
          "mean_error_b": round(float(np.mean([b[i] for i in ids])), 2),
          "mean_difference": round(float(diff.mean()), 2),
          "ci95": [round(float(np.percentile(means, 2.5)), 2), round(float(np.percentile(means, 97.5)), 2)],
          "a_closer_on_pct_of_items": round(float((diff < 0).mean() * 100), 1),
          "draws": options.draws,
          "command": " ".join(["benchmarks/paired_errors.py", *sys.argv[1:]]),
          "date": datetime.date.today().isoformat(),
          "machine": "none: computed from the two results' per-item rows (see their summaries)"},
         options.out)


if __name__ == "__main__":
    main()
