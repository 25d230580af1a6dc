"""The ensemble served, with the regression head and the generation path beside it, in one run
(issue 19, part 2): `bench_serve.py` (32 clients, micro-batching, then one request at a time,
then the faults) on each, one after the other, into one JSON line.

    .venv/bin/python benchmarks/bench_serve_ensemble.py --ensemble ens.json --head RUN \\
        --generation RUN --out docs/measurements/serve_ensemble_cpu_amd_epyc.json
"""

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

HERE = Path(__file__).resolve().parent


def serve_figures(flags: list[str]) -> dict:
    """bench_serve.py's report for one predictor (its JSON object, printed last on stdout)."""
    done = subprocess.run([sys.executable, str(HERE / "bench_serve.py"), *flags],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout[done.stdout.index("{\n"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", required=True, help="an ensemble JSON (pricer ensemble --out)")
    parser.add_argument("--head", help="a --head regression run")
    parser.add_argument("--generation", help="a LoRA run (greedy)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--generation-requests", type=int, default=300,
                        help="the generation path prices ~2 items/s here: fewer requests")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load = [load_average()]
    common = ["--clients", str(args.clients)]
    rows = {"ensemble": serve_figures(["--run", args.ensemble, "--requests", str(args.requests),
                                       *common])}
    if args.head:
        rows["head"] = serve_figures(["--predictor", "head", "--adapter", args.head,
                                      "--requests", str(args.requests), *common])
    if args.generation:
        rows["generation (greedy)"] = serve_figures(
            ["--predictor", "greedy", "--adapter", args.generation, "--requests",
             str(args.generation_requests), "--single-requests", "30", *common])
    load.append(load_average())
    emit({"what": "pricer serve under concurrent clients: the ensemble, the head, the generation "
                  "path, one after the other",
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": machine(),
          "load_average": load, "command": "benchmarks/bench_serve_ensemble.py " + " ".join(
              f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
              if v is not None and k != "out"),
          "results": {name: {"items_per_s": r["micro_batching"]["items_per_s"],
                             "p50_ms": r["micro_batching"]["p50_ms"],
                             "p99_ms": r["micro_batching"]["p99_ms"],
                             "errors": r["micro_batching"]["errors"],
                             "requests": r["micro_batching"]["requests"],
                             "batches": r["micro_batching"]["batches"],
                             "one_at_a_time_items_per_s": r["one_at_a_time"]["items_per_s"],
                             "faults": r["faults"]} for name, r in rows.items()}}, args.out)


if __name__ == "__main__":
    main()
