"""Training speed on this CPU: pricer's training set-up vs a plain TRL SFTTrainer, same data and
reference hyperparameters, measured in the same run.

    .venv/bin/python benchmarks/bench_train.py                 # default model, amazon items
    .venv/bin/python benchmarks/bench_train.py --steps 4 --variants plain,ours
    .venv/bin/python benchmarks/bench_train.py --steps 6 --variants ours-nofast,ours   # fast path

Each variant runs in its own process (so peak memory is its own), variants interleave over
`--repeats` rounds (so a busy shared machine hurts them alike). Tokens/s counts real (non-padding)
tokens after a first warm-up step. Variants:
  plain       SFTTrainer with TRL's defaults (gradient checkpointing on) + the reference recipe
  ours        pricer.train resolved for this CPU: fp32 weights + bf16 autocast (AVX512-BF16),
              no gradient checkpointing, group_by_length, the fast path (train/fast.py: LM head
              and loss only at the labelled tokens)
  ours-nofast ours with fast_path false (TRL's own loss, which projects every position on a CPU)
  ours-padfree ours with TRL's padding_free batches (one packed row per batch; same loss)
  ours-fp32   ours without the bf16 autocast
  ours-1t     ours with torch.set_num_threads(1) (helps on an oversubscribed machine); any
              variant + "-1t" runs with one thread (ours-nofast-1t, ...)
  amazon-write  the generation path of configs/amazon.yaml before issue 10 (all 30 layers, LoRA
              on q/k/v/o/gate/up/down of every layer, max length 182, batch 4, fast path)
  amazon-head   configs/amazon-head.yaml: the regression head (12 layers, LoRA on the top 5,
              no vocabulary projection, max length 128, batch 16)
Compare those two by items/s (their items have different token counts):
    .venv/bin/python benchmarks/bench_train.py --variants amazon-write,amazon-head --steps 6 --items 96
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "amazon-pricer" / "train.jsonl"


def measure(variant: str, model: str, items: int, steps: int, out: str) -> dict:
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from pricer.models.load import load_model, load_tokenizer
    from pricer.train.config import load_config, resolve
    from pricer.train.dataset import load_train_items
    from pricer.train.run import build_data, build_trainer, lora_config

    run = {"model": model, "out": out, "max_steps": steps, "report_to": "none", "save_steps": 10_000}
    if variant == "amazon-write":
        run |= {"max_length": 182, "batch_size": 4, "target_modules": ["q_proj", "k_proj", "v_proj",
                "o_proj", "gate_proj", "up_proj", "down_proj"]}
    config = resolve(load_config("amazon-head" if variant == "amazon-head" else "reference",
                                 run | ({"holdout": 0} if variant == "amazon-head" else {})), "cpu")
    name = variant
    if variant.endswith("-1t"):  # any variant with one thread: ours-1t, ours-nofast-1t, ...
        torch.set_num_threads(1)
        variant = variant.removesuffix("-1t")
    if variant == "ours-fp32":
        config.bf16 = False
    if variant == "ours-nofast":
        config.fast_path = False
    tokenizer = load_tokenizer(model)
    data, head_stats = build_data(config, load_train_items(str(DATA), items), tokenizer)
    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step == 1:  # the first step warms up kernels and allocators
                self.t0, self.n0 = time.perf_counter(), state.num_input_tokens_seen
                self.c0 = time.process_time()
            self.t1, self.n1 = time.perf_counter(), state.num_input_tokens_seen
            self.c1 = time.process_time()

    clock = Clock()
    if variant == "plain":  # TRL as a user would call it, for comparison
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=4,
                         learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                         weight_decay=0.001, max_grad_norm=0.3, max_length=182, bf16=False,
                         use_cpu=True, report_to=[], save_strategy="no", logging_steps=50,
                         include_num_input_tokens_seen="non_padding", disable_tqdm=True)
        model_, _ = load_model(model, precision="fp32", for_training=True)
        trainer = SFTTrainer(model=model_, args=args, train_dataset=data.dataset,
                             processing_class=tokenizer, peft_config=lora_config(config),
                             callbacks=[clock])
    else:  # exactly what `pricer train` builds
        packed = dict(padding_free=True, max_length=None) if variant == "ours-padfree" else {}
        trainer = build_trainer(config, tokenizer, data.dataset, callbacks=[clock],
                                head_stats=head_stats, save_strategy="no", **packed)
    trainer.train()
    seconds = clock.t1 - clock.t0
    return {"variant": name, "tokens_per_s": (clock.n1 - clock.n0) / seconds,
            "items_per_s": (steps - 1) * config.batch_size / seconds,
            "s_per_step": seconds / (steps - 1),
            "tokens_per_cpu_s": (clock.n1 - clock.n0) / (clock.c1 - clock.c0), "peak_rss_gb":
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "threads": torch.get_num_threads(), "trainer": type(trainer).__name__}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", default="plain,ours-nofast,ours,ours-fp32,ours-1t")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant
    args = parser.parse_args()
    out = "/tmp/pricer-bench-train"
    if args.one:
        print(json.dumps(measure(args.one, args.model, args.items, args.steps, out)))
        return
    results: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for variant in args.variants.split(","):
            done = subprocess.run([sys.executable, __file__, "--one", variant, "--model", args.model,
                                   "--items", str(args.items), "--steps", str(args.steps)],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            results.setdefault(variant, []).append(row)
    best = {v: max(r["tokens_per_s"] for r in rows) for v, rows in results.items()}
    first = "plain" if "plain" in best else next(iter(best))  # the ratios' reference
    base = best[first]
    print(f"\n| variant | tokens/s (best of {args.repeats}) | items/s | s/step | tokens per CPU-second "
          f"| peak RSS GB | vs {first} (tokens/s) | vs {first} (items/s) |")
    print("|---|---|---|---|---|---|---|---|")
    base_items = max(r["items_per_s"] for r in results[first])
    for v, rows in results.items():
        r = max(rows, key=lambda r: r["tokens_per_s"])
        ratio = f"{best[v] / base:.2f}x"
        print(f"| {v} | {best[v]:.1f} | {r['items_per_s']:.2f} | {r['s_per_step']:.1f} "
              f"| {r['tokens_per_cpu_s']:.1f} | {r['peak_rss_gb']:.2f} | {ratio} "
              f"| {r['items_per_s'] / base_items:.2f}x |")


if __name__ == "__main__":
    main()
