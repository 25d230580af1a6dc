"""This CPU's matrix-product rate, fp32 and bf16, at the default model's own shapes (issue 19,
part 1: how fast can fp32 answers come at all?).

    .venv/bin/python benchmarks/bench_matmul.py --out docs/measurements/matmul_cpu_amd_epyc.json

Times torch.mm on the seven projections of one SmolLM2-135M decoder layer for a batch of 16
prompts of 160 tokens (2,560 rows: q/o 576x576, k/v 576x192, gate/up 576x1536, down 1536x576),
and on one square 2048 product, with 1 and with all threads, fp32 and bf16. Prints ONE JSON line:
GFLOP/s of each, the prefill FLOPs of one 160-token prompt (2 x 30 layers' weights x tokens), and
the fastest items/s fp32 could give at the layer shapes' rate (the prefill alone, every product
at that rate).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

ROWS, HIDDEN, KV, MLP, LAYERS, TOKENS = 16 * 160, 576, 192, 1536, 30, 160
SHAPES = [(HIDDEN, HIDDEN), (HIDDEN, KV), (HIDDEN, KV), (HIDDEN, HIDDEN),
          (HIDDEN, MLP), (HIDDEN, MLP), (MLP, HIDDEN)]  # (in, out) of q k v o gate up down


def rate(torch, pairs, repeats: int) -> float:
    """GFLOP/s of the products `pairs` ([(a, b)]), each `repeats` times after one warm-up."""
    for a, b in pairs:
        torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            torch.mm(a, b)
    seconds = time.perf_counter() - started
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs) * repeats
    return flops / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    import torch

    torch.manual_seed(0)
    all_threads = torch.get_num_threads()
    load_before = load_average()
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        layer = [(torch.randn(ROWS, k).to(dtype), torch.randn(k, n).to(dtype)) for k, n in SHAPES]
        square = [(torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype))]
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            name = f"{str(dtype).split('.')[-1]}_{threads}_threads"
            results[name] = {"layer_shapes_gflop_s": round(rate(torch, layer, options.repeats), 1),
                             "square_2048_gflop_s": round(rate(torch, square, options.repeats // 4 or 1), 1)}
    torch.set_num_threads(all_threads)
    weights = LAYERS * sum(k * n for k, n in SHAPES)
    prefill_gflop = 2 * weights * TOKENS / 1e9
    fp32 = results[f"float32_{all_threads}_threads"]["layer_shapes_gflop_s"]
    emit({"benchmark": "matmul", "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
          "machine": machine(), "threads": all_threads, "load_average": [load_before, load_average()],
          "command": "benchmarks/bench_matmul.py " + " ".join(sys.argv[1:]),
          "rates": results, "prefill_gflop_per_160_token_prompt": round(prefill_gflop, 1),
          "fp32_items_per_s_at_most": round(fp32 / prefill_gflop, 2)}, options.out)


if __name__ == "__main__":
    main()
