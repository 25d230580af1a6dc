"""A run's second epoch with and without the frozen-layer cache (issue 19, part 3).

    .venv/bin/python benchmarks/bench_head_cache.py --items 500 \
        --out docs/measurements/head_cache_cpu_amd_epyc.json
    .venv/bin/python benchmarks/bench_head_cache.py --config amazon --items 96 --logging-steps 2 \
        --out docs/measurements/generation_cache_loaded_cpu_amd_epyc.json

Trains the `amazon-head` recipe (default model, layers 0-6 frozen, LoRA on 7-11, batch 16, max
length 128, band weights), or with `--config amazon` the generation path (the fast path, layers
0-21 frozen, LoRA on 22-29, batch 8, max length 160; `--loss ntl` for its number-aware loss), for
two epochs on the first N items of train.jsonl, twice in this one
process: `frozen_cache: false` (today: every layer at every step), then `frozen_cache: true` (the
cache built first, into a fresh temporary folder, so its build time is measured too). The same
seed and data order in both, so the logged losses must agree (printed as their largest relative
difference). Prints ONE JSON line: items/s and items per CPU-second of each epoch of each run,
the cache's build time and size, the second epoch's speed-up, the machine (lscpu model name,
AVX512-BF16/AMX, cores) and the load average around each run; `--out` writes it to a file too.

`--baseline REV` first trains the same two epochs with the code of commit REV (a temporary git
worktree, in a child process; e.g. 0334d7b, the code of the day issue 19 was filed, before
the cache, the CPU dropout masks and the plain attention for CPU training), so that the second
epoch's speed-up since then is a ratio measured in this same run too
(`second_epoch_speedup_since_baseline`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, machine  # one JSON line and the machine, as every benchmark

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"amazon-head": "amazon-head (default model SmolLM2-135M, 12 layers, LoRA on the top 5, "
                          "layers 0-6 frozen, batch 16, max length 128)",
           "amazon": "amazon, the generation path (default model SmolLM2-135M, 30 layers, LoRA on "
                     "the top 8, layers 0-21 frozen, the fast path, batch 8, max length 160)"}
TRAIN = ROOT.parent / "shared" / "data" / "amazon-pricer" / "train.jsonl"


def run(recipe: str, items_file: Path, n_items: int, cache: bool, work: Path,
        threads: int | None, loss: str | None, logging_steps: int | None) -> dict:
    import torch
    from transformers import TrainerCallback

    from pricer.models.load import load_tokenizer
    from pricer.train.config import load_config, resolve
    from pricer.train.dataset import load_train_items
    from pricer.train.run import build_data, build_trainer

    class EpochClock(TrainerCallback):
        def __init__(self):
            self.epochs = []

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, args, state, control, **kwargs):
            wall, cpu = time.perf_counter() - self.start[0], time.process_time() - self.start[1]
            self.epochs.append({"seconds": round(wall, 1), "items_per_s": round(n_items / wall, 3),
                                "items_per_cpu_s": round(n_items / cpu, 3)})

    name = {True: "cache", False: "no_cache", None: "baseline"}[cache]
    config = resolve(load_config(recipe, {
        "data": str(items_file), "out": str(work / name), "holdout": 0, "epochs": 2,
        "eval": False, "report_to": "none", "save_steps": 10 ** 6, "max_minutes": 10 ** 6,
        "threads": threads, "max_items": None}
        | ({} if cache is None else {"frozen_cache": cache})  # None: code from before the cache
        | ({"loss": loss} if loss else {})
        | ({"logging_steps": logging_steps} if logging_steps else {})), None)
    if config.threads:
        torch.set_num_threads(config.threads)
    load_before = os.getloadavg()
    tokenizer = load_tokenizer(config.model)
    data, stats = build_data(config, load_train_items(config.data), tokenizer)
    clock = EpochClock()
    torch.manual_seed(0)  # LoRA's initial weights: the same in both runs
    started = time.perf_counter()
    trainer = build_trainer(config, tokenizer, data.dataset, head_stats=stats, callbacks=[clock])
    setup_s = time.perf_counter() - started
    trainer.train()
    frozen = getattr(trainer.model, "cache", None)  # a head run's CachedHeadModel
    if getattr(trainer, "frozen", None) is not None:  # the generation path's FrozenDecoder
        frozen = trainer.frozen.cache
    return {"epochs": clock.epochs, "setup_s": round(setup_s, 1),
            "cache_build_s": round(frozen.built_s, 1) if frozen is not None and frozen.built_s else None,
            "cache_mb": round(frozen.hidden.nbytes / 2 ** 20, 1) if frozen is not None else None,
            "note": getattr(trainer, "frozen_note", None), "bf16_autocast": bool(config.bf16),
            "losses": [log["loss"] for log in trainer.state.log_history if "loss" in log],
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()], "items": data.n_items,
            "tokens": data.n_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="amazon-head",
                        help="amazon-head (the regression head) or amazon (the generation path)")
    parser.add_argument("--loss", default=None, help="ce | ntl (default: the config's)")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--logging-steps", type=int, default=None,
                        help="log the loss every N steps (default: the config's)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also train with the code of this commit, first (e.g. 0334d7b)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # SRC,ITEMS_FILE,WORK
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args()
    more = (options.threads, options.loss, options.logging_steps)
    if options.child:  # the baseline's side, run with another commit's source
        src, items_file, work = options.child.split(",")
        sys.path.insert(0, src)
        import pricer

        if not Path(pricer.__file__).resolve().is_relative_to(Path(src).resolve()):
            raise SystemExit(f"the baseline imported {pricer.__file__}, not the code in {src}")
        print(json.dumps(run(options.config, Path(items_file), options.items, None, Path(work), *more)))
        return
    sys.path.insert(0, str(ROOT / "src"))
    from pricer.train import frozen

    with tempfile.TemporaryDirectory(prefix="bench-head-cache-") as tmp:
        work = Path(tmp)
        items_file = work / "train.jsonl"
        with open(TRAIN) as source:
            items_file.write_text("".join(line for _, line in zip(range(options.items), source)))
        frozen.cache_root = lambda: work / "frozen"  # a fresh cache: its build is measured
        started = datetime.now(timezone.utc)
        baseline = None
        if options.baseline:
            baseline = run_baseline(options, items_file, work)
        args = (items_file, options.items)
        without = run(options.config, *args, False, work, *more)
        with_cache = run(options.config, *args, True, work, *more)
    a, b = without.pop("losses"), with_cache.pop("losses")
    worst = max((abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b)), default=None)
    second = [r["epochs"][1] for r in (without, with_cache)]
    result = {
        "benchmark": "head_cache" if options.config == "amazon-head" else "frozen_cache",
        "recipe": RECIPES.get(options.config, options.config),
        "loss": options.loss or "the config's",
        "data": f"first {options.items} items of amazon-pricer/train.jsonl",
        "started_utc": started.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
        "threads": options.threads or "torch default",
        "no_cache": without, "cache": with_cache,
        "second_epoch_speedup": round(second[1]["items_per_s"] / second[0]["items_per_s"], 2),
        "second_epoch_speedup_per_cpu_s": round(second[1]["items_per_cpu_s"]
                                                / second[0]["items_per_cpu_s"], 2),
        "logged_losses": len(a), "losses_max_relative_difference": worst,
    }
    if baseline:
        baseline.pop("losses", None)
        old = baseline["epochs"][1]
        result |= {"baseline": baseline,
                   "second_epoch_speedup_since_baseline": round(second[1]["items_per_s"]
                                                                / old["items_per_s"], 2),
                   "second_epoch_speedup_since_baseline_per_cpu_s": round(
                       second[1]["items_per_cpu_s"] / old["items_per_cpu_s"], 2)}
    emit(result, options.out)


def run_baseline(options, items_file: Path, work: Path) -> dict:
    """The same two epochs with commit `options.baseline`'s code: a git worktree in `work`, this
    script run in it as a child process (its own imports, nothing shared with this one)."""
    tree = work / "baseline-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                    options.baseline], check=True, capture_output=True)
    try:
        revision = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                                  check=True, capture_output=True, text=True).stdout.strip()
        command = [sys.executable, str(Path(__file__).resolve()), "--config", options.config,
                   "--items", str(options.items), "--child", f"{tree / 'src'},{items_file},{work}"]
        for flag, value in (("--threads", options.threads), ("--loss", options.loss),
                            ("--logging-steps", options.logging_steps)):
            if value is not None:
                command += [flag, str(value)]
        done = subprocess.run(command, check=True, capture_output=True, text=True,
                              env=os.environ | {"PYTHONPATH": str(tree / "src")})
        return {"commit": revision, **json.loads(done.stdout.strip().splitlines()[-1])}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)


if __name__ == "__main__":
    main()
