"""Prediction speed and accuracy on this CPU (issue 6), all in one run.

Speed: the reference's per-item greedy loop (`model_predict`: one prompt at a time, `generate`,
fp32, 8 new tokens for a digit tokenizer) versus pricer's batched predictors, on the same model
(the offline default SmolLM2-135M) and the same course-format prompts (../shared/data test.jsonl).
The CPU's peak (a big bf16 and fp32 matmul) is measured in the same run.
Accuracy: greedy vs expected, scored by the evaluation harness: the base model on the first
items of test.jsonl and of the demo catalog's test split, and each finished adapter under runs/
on the test split of the data it was trained on.

    .venv/bin/python benchmarks/bench_predict.py --n 32 --accuracy 250
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pricer.data.items import read_items
from pricer.predict.extract import extract_price
from pricer.predict.llm import load_llm_predictor

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "amazon-pricer" / "test.jsonl"


def matmul_peak(dtype, n=2048, reps=8) -> float:
    """GFLOP/s of a big square matmul: what this CPU can do at best in `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def reference_loop(model, tokenizer, prompts, max_new_tokens=8):
    """The reference's model_predict, item by item (price-is-right.md, section 6)."""
    from transformers import set_seed

    prices = []
    for prompt in prompts:
        set_seed(42)
        inputs = tokenizer.encode(prompt, return_tensors="pt")
        mask = torch.ones(inputs.shape, dtype=torch.long)
        with torch.no_grad():
            out = model.generate(inputs, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        prices.append(extract_price(tokenizer.decode(out[0])))
    return prices


def flop_per_item(model, tokens: float) -> float:
    """Useful FLOP of one prompt's forward pass: the Linear layers (lm_head once, for the last
    position) and causal attention. Generated tokens are ignored (a lower bound)."""
    config = model.config
    linear = sum(m.weight.numel() for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lm_head" not in name)
    head = config.vocab_size * config.hidden_size
    attention = 2 * config.num_hidden_layers * config.hidden_size * tokens**2  # QK^T and AV, causal
    return 2 * linear * tokens + 2 * head + attention


def speed(n: int, batch_size: int, rounds: int) -> dict:
    """items/s of each predictor on the same n items. The machine is shared, so the runs are
    interleaved: in each of `rounds` rounds every predictor prices the next n/rounds items, and
    each predictor's time is summed over the rounds (all of them see the same load)."""
    items = read_items(TEST)[:n]
    prompts = [it.prompt for it in items]
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}

    ref = load_llm_predictor("greedy", precision="fp32", device="cpu", batch_size=batch_size)
    tokens = statistics.mean(len(x) for x in ref.tokenizer(prompts)["input_ids"])
    flop = flop_per_item(ref.model, tokens)
    runs = [("reference per-item greedy loop (generate)", "fp32",
             lambda ps: reference_loop(ref.model, ref.tokenizer, ps)),
            (f"pricer greedy (batch {batch_size})", "fp32", ref.predict)]
    for method, precision, quantize in [("greedy", "bf16", None), ("greedy", "fp32", "int8"),
                                        ("expected", "bf16", None)]:
        predictor = load_llm_predictor(method, precision=precision, device="cpu",
                                       batch_size=batch_size, quantize=quantize)
        runs.append((f"pricer {method} (batch {batch_size})",
                     precision + ("+int8 dynamic" if quantize else ""), predictor.predict))
    for _, _, fn in runs:
        fn(prompts[:1])  # warm-up
    seconds = [0.0] * len(runs)
    prices = [[] for _ in runs]
    chunk = -(-n // rounds)
    for start in range(0, n, chunk):
        for k, (_, _, fn) in enumerate(runs):
            t = time.perf_counter()
            prices[k] += fn(prompts[start:start + chunk])
            seconds[k] += time.perf_counter() - t
    for dtype, key in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):  # again: the best of two
        peak[key] = max(peak[key], matmul_peak(dtype))
    rows = []
    for k, (name, precision, _) in enumerate(runs):
        items_s = n / seconds[k]
        gflop_s = items_s * flop / 1e9
        rows.append({"predictor": name, "precision": precision, "items_s": items_s,
                     "speedup": seconds[0] / seconds[k],
                     "agree": statistics.mean(p == r for p, r in zip(prices[k], prices[0]))
                     if "greedy" in name else None,
                     "gflop_s": gflop_s,
                     "peak_fraction": gflop_s / peak["fp32" if precision == "fp32" else "bf16"]})
    return {"n": n, "rounds": rounds, "mean_prompt_tokens": tokens, "gflop_per_item": flop / 1e9,
            "peak_gflop_s": peak, "rows": rows}


def accuracy(size: int, batch_size: int) -> list[dict]:
    """Base model on test.jsonl and the demo catalog; each finished adapter under runs/ (a run
    folder with adapter_config.json) on the test split of the data it was trained on."""
    from pricer.data.demo import build_demo_catalog
    from pricer.evaluate.harness import evaluate
    from pricer.models.load import load_tokenizer

    demo = build_demo_catalog(Path(tempfile.mkdtemp()) / "demo", train_size=0, test_size=size,
                              tokenizer=load_tokenizer("default"))
    jobs = [(None, "amazon test.jsonl", read_items(TEST)[:size]),
            (None, "demo test", read_items(demo)[:size])]
    for run in sorted(p.parent for p in (ROOT / "runs").glob("*/adapter_config.json")):
        card = run / "data_fingerprint.json"
        data = json.loads(card.read_text()).get("data") if card.exists() else None
        if data and (ROOT / data).is_dir():
            jobs.append((str(run.relative_to(ROOT)), f"{data} test", read_items(ROOT / data)[:size]))
    results = []
    for adapter, data, items in jobs:
        for method in ("greedy", "expected"):
            predictor = load_llm_predictor(method, adapter=adapter, device="cpu",
                                           batch_size=batch_size, merge=bool(adapter))
            start = time.perf_counter()
            r = evaluate(predictor, items, size=size, show=False, batch_size=64)
            results.append({"model": "default" + (f" + {adapter}" if adapter else ""),
                            "method": method, "data": data, "n": r["n"],
                            "error": r["error"], "rmsle": r["rmsle"], "hits": r["hits"],
                            "seconds": time.perf_counter() - start})
            print(json.dumps(results[-1]), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="items for the speed comparison (0: skip)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (shared machine)")
    parser.add_argument("--accuracy", type=int, default=250, help="items per accuracy run (0: skip)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.n:
        result = speed(args.n, args.batch_size, args.rounds)
        print(f"\n{result['n']} items, {result['mean_prompt_tokens']:.0f} prompt tokens on average, "
              f"{result['gflop_per_item']:.1f} GFLOP per item; peak fp32 "
              f"{result['peak_gflop_s']['fp32']:.0f} / bf16 {result['peak_gflop_s']['bf16']:.0f} GFLOP/s")
        print("| predictor | precision | items/s | speed-up | GFLOP/s | of peak | same price as reference |")
        print("|---|---|---|---|---|---|---|")
        for r in result["rows"]:
            agree = "" if r["agree"] is None else f"{100 * r['agree']:.0f} %"
            print(f"| {r['predictor']} | {r['precision']} | {r['items_s']:.2f} | {r['speedup']:.1f}x | "
                  f"{r['gflop_s']:.0f} | {100 * r['peak_fraction']:.0f} % | {agree} |")
        print(json.dumps(result), flush=True)
    if args.accuracy:
        rows = accuracy(args.accuracy, args.batch_size)
        print("| model | method | data | n | error $ | RMSLE | hits % | seconds |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['method']} | {r['data']} | {r['n']} | {r['error']:.2f} | "
                  f"{r['rmsle']:.2f} | {r['hits']:.1f} | {r['seconds']:.0f} |")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
