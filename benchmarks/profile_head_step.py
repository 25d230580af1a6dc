"""Where a cached training step of the head spends its CPU time (issue 19, part 3): torch's
profiler over the second epoch of the `amazon-head` recipe with the frozen-layer cache.

    .venv/bin/python benchmarks/profile_head_step.py --items 96 \
        --out docs/measurements/profile_head_step_cpu_amd_epyc.json
    ... --before    # torch's dropout and SDPA attention, as before train/dropout.py

Prints ONE JSON line: the epoch's seconds and the share of profiled CPU time of the top
operators (self time), e.g. aten::mm (matrix products), aten::bernoulli_ (torch's dropout
masks), the SDPA attention kernels, aten::copy_ (dtype casts).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, load_average, machine

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "amazon-pricer" / "train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--before", action="store_true",
                        help="torch's own dropout and SDPA attention (the code before 2026-12-08)")
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch
    from transformers import TrainerCallback

    from pricer.models.load import load_tokenizer
    from pricer.train import dropout, frozen
    from pricer.train.config import load_config, resolve
    from pricer.train.dataset import load_train_items
    from pricer.train.run import build_data, build_trainer

    class Profile(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            if state.epoch >= 1:  # the second epoch: the cache is built and read
                self.profiler = torch.profiler.profile()
                self.profiler.__enter__()
                self.started = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            if hasattr(self, "profiler") and not hasattr(self, "seconds"):
                self.seconds = time.perf_counter() - self.started
                self.profiler.__exit__(None, None, None)

    with tempfile.TemporaryDirectory(prefix="profile-head-") as tmp:
        work = Path(tmp)
        items_file = work / "train.jsonl"
        with open(TRAIN) as source:
            items_file.write_text("".join(line for _, line in zip(range(options.items), source)))
        frozen.cache_root = lambda: work / "frozen"
        config = resolve(load_config("amazon-head", {
            "data": str(items_file), "out": str(work / "run"), "holdout": 0, "epochs": 2,
            "eval": False, "report_to": "none", "save_steps": 10 ** 6, "max_minutes": 10 ** 6,
            "frozen_cache": True}), None)
        tokenizer = load_tokenizer(config.model)
        data, stats = build_data(config, load_train_items(config.data), tokenizer)
        torch.manual_seed(0)
        load_before = load_average()
        trainer = build_trainer(config, tokenizer, data.dataset, head_stats=stats)
        if options.before:
            dropout.FastDropout.forward = torch.nn.Dropout.forward
            frozen.decoder_of(trainer.model).config._attn_implementation = "sdpa"
        profile = Profile()
        trainer.add_callback(profile)
        trainer.train()
    events = profile.profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:options.top]
    emit({"benchmark": "profile_head_step", "variant": "before" if options.before else "today",
          "date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": machine(),
          "load_average": [load_before, load_average()],
          "command": "benchmarks/profile_head_step.py " + " ".join(sys.argv[1:]),
          "items": options.items, "second_epoch_s": round(profile.seconds, 2),
          "profiled_cpu_s": round(total / 1e6, 2),
          "self_cpu_share": {e.key: round(e.self_cpu_time_total / total, 3) for e in top}},
         options.out)


if __name__ == "__main__":
    main()
