"""Where an ensemble's time goes: each member's seconds per item, on batches as the server makes
them (issue 19, part 2: how fast can the ensemble be served at all on this CPU?).

    .venv/bin/python benchmarks/bench_ensemble_members.py --ensemble ens.json \
        --out docs/measurements/ensemble_members_cpu_amd_epyc.json

Loads the ensemble, then prices `--batches` batches of `--batch` test prompts (the texts
bench_serve.py sends) twice: member by member, each timed, with the text-embedding cache emptied
before the batch ("cold": texts the server has not seen), and the whole ensemble on the same
batch again ("warm": every embedding cached, as for bench_serve's repeated texts). Members with
weight 0 are not asked (as EnsemblePredictor). Prints ONE JSON line: milliseconds per item of each
member and of the ensemble, cold and warm, and the items/s they allow with no serving cost at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "amazon-pricer" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", required=True, type=Path)
    parser.add_argument("--batch", type=int, default=32, help="items per batch (bench_serve: 32)")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from pricer.data.items import Item, read_items
    from pricer.predict import baselines
    from pricer.predict.ensemble import load_ensemble

    ensemble = load_ensemble(options.ensemble)
    texts = [i.prompt for i in read_items(TEST)]
    items = [Item(str(n), text) for n, text in enumerate(texts)]
    active = [(m, p) for m, p, w in zip(ensemble.members, ensemble.predictors, ensemble.weights)
              if w > 0]
    names = [f"{m['predictor']}:{Path(str(next(iter(m['options'].values()), ''))).name}"
             for m, _ in active]
    ensemble.predict(items[:options.batch])  # warm-up: weights loaded, first-call costs paid
    load_before = load_average()
    cold = dict.fromkeys(names, 0.0)
    whole = {"cold": 0.0, "warm": 0.0}
    n = 0
    for b in range(1, options.batches + 1):
        batch = items[b * options.batch:(b + 1) * options.batch]
        n += len(batch)
        baselines._SEEN.clear()
        for name, (_, predictor) in zip(names, active):
            started = time.perf_counter()
            predictor.predict(batch)
            cold[name] += time.perf_counter() - started
        baselines._SEEN.clear()
        for label in ("cold", "warm"):  # the second time, every embedding is cached
            started = time.perf_counter()
            ensemble.predict_details(batch)
            whole[label] += time.perf_counter() - started
    ms = {name: round(1000 * s / n, 1) for name, s in cold.items()}
    emit({"benchmark": "ensemble_members", "ensemble": str(options.ensemble),
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": machine(),
          "load_average": [load_before, load_average()],
          "command": "benchmarks/bench_ensemble_members.py " + " ".join(sys.argv[1:]),
          "items": n, "batch": options.batch,
          "member_ms_per_item_cold": ms,
          "ensemble_ms_per_item": {k: round(1000 * s / n, 1) for k, s in whole.items()},
          "items_per_s_at_most": {k: round(n / s, 1) for k, s in whole.items()}}, options.out)


if __name__ == "__main__":
    main()
