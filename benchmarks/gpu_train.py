"""Training speed and memory at Llama-3.1-8B shapes on one GPU: pricer's set-up vs a plain TRL
SFTTrainer, 4-bit QLoRA and bf16 LoRA, same data and reference hyperparameters, same run.

    python benchmarks/gpu_train.py            # CUDA, random weights of the real 8B shapes (~3 min on an H100)
    python benchmarks/gpu_train.py --tiny     # the same code path on a tiny model, CPU is fine

Weights are random (no download): a random bf16 model of the published config
(../shared/models/llama-3.1-8b/config.json) is saved once to --workdir and loaded back the way
pricer loads models (4-bit NF4 via bitsandbytes, or bf16). The data are token sequences of
150-182 tokens with the last 3-8 tokens as the completion (like the reference's prompts); only
those carry loss. Prints one JSON line: tokens/s (non-padding, after warm-up) and peak GPU memory
per variant, and ours/plain per precision.
  plain  SFTTrainer, TRL defaults (gradient checkpointing on) + the reference recipe
  ours   pricer.train.run.build_trainer of the resolved reference config (what `pricer train`
         builds; checkpointing only for 4-bit; the fast path of train/fast.py since issue 12)
Needs torch, transformers, peft and trl (carry trl onto a GPU image that lacks it).
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


def build_model_folder(workdir: Path, tiny: bool, device: str) -> tuple[Path, int]:
    """A random-weight Llama of the 8B config (or a tiny one) saved with a small tokenizer."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    config = LlamaConfig.from_json_file(str(CONFIG))
    if tiny:
        config.update(dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    folder = workdir / ("llama-8b-tiny" if tiny else "llama-8b-random")
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


def make_data(vocab: int, n: int):
    from datasets import Dataset

    rng = random.Random(42)
    rows = {"input_ids": [], "completion_mask": []}
    for _ in range(n):
        length, answer = rng.randint(150, 182), rng.randint(3, 8)
        rows["input_ids"].append([rng.randrange(3, vocab) for _ in range(length)])
        rows["completion_mask"].append([0] * (length - answer) + [1] * answer)
    return Dataset.from_dict(rows)


def measure(folder: Path, precision: str, variant: str, data, steps: int, batch: int,
            device: str, out: str) -> dict:
    import torch
    from transformers import TrainerCallback
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
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--precisions", default="4bit,bf16")
    parser.add_argument("--workdir", default="/tmp/pricer-gpu-train")
    args = parser.parse_args()
    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA GPU here: the 8B shapes need one (use --tiny to test the script)")
    started = time.perf_counter()
    folder, vocab = build_model_folder(Path(args.workdir), args.tiny, device)
    data = make_data(vocab, args.steps * args.batch)
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "model": "llama-3.1-8b shapes, random weights" + (" (tiny)" if args.tiny else ""),
               "batch": args.batch, "steps": args.steps, "tokens": "150-182 per sequence"}
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
