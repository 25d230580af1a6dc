"""Same answers, faster (issue 19, part 1): every CPU path for greedy prices against the
reference's per-item fp32 loop, on the same items, in one run.

The reference: the course's `model_predict`, one prompt at a time, `generate`, fp32, on the very
token ids pricer sends (the run's prompt format, cut to its max_length). Against it, on the same
model + adapter:
- pricer greedy in fp32, batched (the reference's answers by construction);
- pricer greedy "checked" (bf16 decides; any decision closer than the check margin is
  recomputed in fp32): what `auto` picks on a CPU with fast bf16;
- pricer greedy in plain bf16 (by name);
- llama.cpp on GGUF exports of the merged model (f16, bf16, q8_0), one prompt at a time.
Each path's items/s, its speed-up (the reference's seconds over its own) and the share of its
prices equal to the reference's. The machine is shared, so the paths are interleaved: each
prices the next slice of items in turn, and its time is summed over the slices.

    .venv/bin/python benchmarks/bench_same_answers.py --run runs/quickstart/adapter \\
        --items 200 --out docs/measurements/same_answers_demo_cpu_amd_epyc.json
"""

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from report import emit, load_average, machine

from pricer.data.items import read_items
from pricer.predict.extract import extract_price
from pricer.data.prompts import PRICE_PREFIX
from pricer.predict.llm import load_llm_predictor
from pricer.predict.registry import make_predictor

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "amazon-pricer" / "test.jsonl"


def reference_loop(model, tokenizer, rows, max_new_tokens):
    """The reference's model_predict on token ids: one item at a time, `generate`, greedy."""
    prices = []
    for ids in rows:
        inputs = torch.tensor([ids])
        with torch.inference_mode():
            out = model.generate(inputs, attention_mask=torch.ones_like(inputs),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        prices.append(extract_price(PRICE_PREFIX + tokenizer.decode(out[0, len(ids):])))
    return prices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a LoRA run folder (none: the base model)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default=str(TEST))
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--gguf", default="f16,bf16,q8_0", help="GGUF types ('' for none)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    items = read_items(args.data)[:args.items]
    exact = load_llm_predictor("greedy", model=args.model, adapter=args.run, precision="fp32")
    checked = load_llm_predictor("greedy", model=args.model, adapter=args.run, precision="checked")
    plain_bf16 = load_llm_predictor("greedy", model=args.model, adapter=args.run, precision="bf16")
    rows, _ = exact.encode(items)
    by_id = {item.id: row for item, row in zip(items, rows)}
    paths = [("reference per-item loop (generate)", "fp32",
              lambda chunk: reference_loop(exact.model, exact.tokenizer,
                                           [by_id[i.id] for i in chunk], exact.max_new_tokens)),
             ("pricer greedy, batch 16", "fp32", exact.predict),
             ("pricer greedy, batch 16", "checked", checked.predict),
             ("pricer greedy, batch 16", "bf16", plain_bf16.predict)]
    work = tempfile.TemporaryDirectory(prefix="same-answers-")
    types = tuple(t for t in args.gguf.split(",") if t)
    if types:
        from pricer.export.run import export

        export(args.model, args.run, Path(work.name) / "export", gguf_types=types, dtype="fp32")
        for kind in types:
            gguf = make_predictor("gguf", path=Path(work.name) / "export" / "gguf" /
                                  f"pricer-{kind}.gguf", threads=args.threads,
                                  prompt_format=exact.prompt_format,
                                  max_length=exact.max_prompt_tokens)
            paths.append(("llama.cpp greedy, per item", f"gguf {kind}", gguf.predict))
    for _, _, predict in paths:
        predict(items[:1])  # warm-up
    seconds, prices = [0.0] * len(paths), [[] for _ in paths]
    load_before = load_average()
    chunk = -(-len(items) // args.slices)
    for start in range(0, len(items), chunk):
        for k, (_, _, predict) in enumerate(paths):
            t = time.perf_counter()
            prices[k] += predict(items[start:start + chunk])
            seconds[k] += time.perf_counter() - t
    results = []
    for k, (name, precision, _) in enumerate(paths):
        same = sum(p == r for p, r in zip(prices[k], prices[0]))
        results.append({"path": name, "precision": precision,
                         "items_s": round(len(items) / seconds[k], 3),
                         "speedup": round(seconds[0] / seconds[k], 2),
                         "same": same, "same_pct": round(100 * same / len(items), 1)})
    emit({"what": "greedy prices: every CPU path against the reference's per-item fp32 loop",
          "model": args.model, "run": args.run, "data": Path(args.data).name,
          "items": len(items), "slices": args.slices, "threads": args.threads,
          "checked_close_share": round(checked.close_share(), 3),
          "check_margin": checked.check_margin,
          "machine": machine(), "load_average": [load_before, load_average()],
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
          "command": "benchmarks/bench_same_answers.py " + " ".join(
              f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
              if v is not None and k != "out"),
          "paths": results}, args.out)


if __name__ == "__main__":
    main()
