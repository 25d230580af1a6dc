"""Training speed and memory at Llama-3.1-8B shapes on one GPU: pricer's set-up vs a plain TRL
SFTTrainer, 4-bit QLoRA and bf16 LoRA, same data and reference hyperparameters, same run.

    python benchmarks/gpu_train.py --save-lengths .device/lengths.json   # here: the real items' lengths
    python benchmarks/gpu_train.py --config .device/config.json --lengths .device/lengths.json  # CUDA
    python benchmarks/gpu_train.py --tiny     # the same code path on a tiny model, CPU (< 1 min idle)

Weights are random (no download): a random bf16 model of the published config
(../shared/models/llama-3.1-8b/config.json, or --config) is saved once to --workdir and loaded
back the way pricer loads models (4-bit NF4 via bitsandbytes, or bf16). The data are random token
ids at the real items' lengths: per item of ../shared/data/amazon-pricer/train.jsonl, the prompt
length in Llama-3.1 tokens (estimated: its SmolLM2 token count x 178/193, the reference's
~176-180-token prompts over SmolLM2's median of 193 on these items, at most 177) and the
completion's (Llama 3 writes 0..999 as one token: "123" ".00" EOS = 3, 4 from $1,000); only the
completion carries loss. A GPU machine has neither the data nor SmolLM2: --save-lengths writes
the lengths here, --lengths reads them there. Prints one JSON line: tokens/s (non-padding, after
two warm-up steps) and peak GPU memory per variant, and ours/plain per precision.
  plain  SFTTrainer, TRL defaults (gradient checkpointing on) + the reference recipe
  ours   pricer.train.run.build_trainer of the resolved reference config (what `pricer train`
         builds; checkpointing only for 4-bit; the fast path of train/fast.py since issue 12)
Needs torch, transformers, peft, trl, datasets and bitsandbytes (carry what a GPU image lacks;
docs/multi-gpu.md has the device command).
"""

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
CONFIG = ROOT.parent / "shared" / "models" / "llama-3.1-8b" / "config.json"
ITEMS = ROOT.parent / "shared" / "data" / "amazon-pricer" / "train.jsonl"
LLAMA_PER_SMOL = 178 / 193  # reference prompt length (Llama 3.1) / SmolLM2's median on ITEMS
MAX_PROMPT = 177  # the reference: full training prompts of at most 179 tokens
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, vocab_size=1024)  # small vocab: the LM head


def real_lengths(items: Path, limit: int | None = None) -> list[list[int]]:
    """[prompt tokens, completion tokens] per real item, in Llama-3.1 tokens (module docstring)."""
    from pricer.data.prompts import test_prompt
    from pricer.models.load import load_tokenizer

    if not items.is_file():
        sys.exit(f"{items}: no such file; give --lengths FILE (written by --save-lengths)")
    rows = [json.loads(line) for line in items.read_text().splitlines()[:limit] if line.strip()]
    counts = load_tokenizer("default")([test_prompt(r["text"]) for r in rows])["input_ids"]
    return [[min(MAX_PROMPT, round(len(ids) * LLAMA_PER_SMOL)), 3 if round(r["price"]) < 1000 else 4]
            for ids, r in zip(counts, rows)]


def build_model_folder(workdir: Path, tiny: bool, device: str, config_file: Path) -> tuple[Path, int]:
    """A random-weight Llama of the 8B config (or a tiny one) saved with a small tokenizer."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if not config_file.is_file():
        sys.exit(f"{config_file}: no such file; give --config (a copy of "
                 "../shared/models/llama-3.1-8b/config.json)")
    config = LlamaConfig.from_json_file(str(config_file))
    if tiny:
        config.update(TINY)
    folder = workdir / ("llama-8b-tiny-v1k" if tiny else "llama-8b-random")
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        with torch.device(device):
            model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(folder)
        del model
        gc.collect()
        vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
        fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, "<unk>")),
                                       pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
        fast.save_pretrained(folder)
    return folder, config.vocab_size


def make_data(vocab: int, n: int, lengths: list[list[int]]):
    """n sequences of random ids at lengths drawn from the real items' (prompt, completion)."""
    from datasets import Dataset

    rng = random.Random(42)
    rows = {"input_ids": [], "completion_mask": []}
    for prompt, answer in rng.choices(lengths, k=n):
        rows["input_ids"].append([rng.randrange(3, vocab) for _ in range(prompt + answer)])
        rows["completion_mask"].append([0] * prompt + [1] * answer)
    return Dataset.from_dict(rows)


def measure(folder: Path, precision: str, variant: str, data, steps: int, batch: int,
            device: str, out: str) -> dict:
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from pricer.models.load import load_model
    from pricer.train.config import load_config, resolve
    from pricer.train.run import build_trainer, lora_config

    config = resolve(load_config("reference",
                                 {"model": str(folder), "out": out, "max_steps": steps,
                                  "batch_size": batch, "precision": precision,
                                  "report_to": "none"}), device)
    if device == "cpu":  # --tiny on a CPU: paged optimisers and bf16 need CUDA
        config.optim, config.bf16 = "adamw_torch", False
    common = dict(save_strategy="no", include_num_input_tokens_seen="non_padding",
                  disable_tqdm=True, logging_steps=1000)
    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if state.global_step == 2:  # two warm-up steps
                self.t0, self.n0 = time.perf_counter(), state.num_input_tokens_seen
            self.t1, self.n1 = time.perf_counter(), state.num_input_tokens_seen

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model, tokenizer = load_model(str(folder), precision=precision, device=device,
                                  for_training=True)
    clock = Clock()
    if variant == "plain":  # TRL as a user would call it, for comparison
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch,
                         learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                         optim=config.optim, weight_decay=0.001, max_grad_norm=0.3,
                         max_length=182, bf16=config.bf16, use_cpu=device == "cpu",
                         completion_only_loss=True, report_to=[], **common)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data,
                             processing_class=tokenizer, peft_config=lora_config(config),
                             callbacks=[clock])
        trainer.remove_callback(PrinterCallback)  # stdout carries the one JSON line only
    else:  # exactly what `pricer train` builds
        trainer = build_trainer(config, tokenizer, data, model=model, device=device,
                                callbacks=[clock], **common)
    args = trainer.args
    trainer.train()
    seconds = clock.t1 - clock.t0
    row = {"tokens_per_s": round((clock.n1 - clock.n0) / seconds, 1),
           "s_per_step": round(seconds / (steps - 2), 3),
           "gradient_checkpointing": bool(getattr(args, "activation_checkpointing", None) or getattr(args, "gradient_checkpointing", False)),
           "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)
           if device.startswith("cuda") else None}
    del trainer, model
    gc.collect()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model of the same family (CPU ok)")
    parser.add_argument("--steps", type=int, default=None, help="12 (tiny: 4); 2 are warm-up")
    parser.add_argument("--batch", type=int, default=None, help="4, the course's (tiny: 2)")
    parser.add_argument("--precisions", default="4bit,bf16")
    parser.add_argument("--workdir", default="/tmp/pricer-gpu-train")
    parser.add_argument("--config", type=Path, default=CONFIG, help="Llama-3.1-8B config.json")
    parser.add_argument("--lengths", type=Path, help="item lengths written by --save-lengths "
                        "(default: computed from ../shared/data)")
    parser.add_argument("--save-lengths", type=Path, help="write the real items' lengths, exit")
    args = parser.parse_args()
    if args.save_lengths:
        args.save_lengths.parent.mkdir(parents=True, exist_ok=True)
        args.save_lengths.write_text(json.dumps(real_lengths(ITEMS)))
        print(json.dumps({"lengths": str(args.save_lengths), "items": str(ITEMS)}))
        return
    args.steps = args.steps or (4 if args.tiny else 12)
    args.batch = args.batch or (2 if args.tiny else 4)
    if args.steps < 3:
        sys.exit("--steps must be at least 3 (2 warm-up steps, then the timed ones)")
    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA GPU here: the 8B shapes need one (use --tiny to test the script)")
    started = time.perf_counter()
    lengths = (json.loads(args.lengths.read_text()) if args.lengths
               else real_lengths(ITEMS, 500 if args.tiny else None))
    folder, vocab = build_model_folder(Path(args.workdir), args.tiny, device, args.config)
    data = make_data(vocab, args.steps * args.batch, lengths)
    seq = sorted(p + c for p, c in lengths)
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "model": "llama-3.1-8b shapes, random weights" + (" (tiny)" if args.tiny else ""),
               "batch": args.batch, "steps": args.steps,
               "tokens": f"real item lengths: {len(seq)} items, median {seq[len(seq) // 2]}, "
                         f"{seq[0]}-{seq[-1]} per sequence, 3-4 labelled"}
    for precision in args.precisions.split(","):
        rows = {v: measure(folder, precision, v, data, args.steps, args.batch, device,
                           f"{args.workdir}/out") for v in ("plain", "ours")}
        rows["ours_vs_plain"] = round(rows["ours"]["tokens_per_s"] / rows["plain"]["tokens_per_s"], 2)
        summary[precision] = rows
        print(f"{precision}: {rows}", file=sys.stderr, flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
