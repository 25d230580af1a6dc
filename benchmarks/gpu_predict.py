"""Prediction speed on a GPU with the Llama-3.1-8B architecture (random weights), issue 6.

Compares, on the same model and prompts, the reference's per-item greedy loop (`generate`, 4 new
tokens, one prompt at a time) with pricer's batched `greedy`, `topk` and `expected`, in bf16 and
(when bitsandbytes is importable) 4-bit NF4. Prints one JSON summary line at the end.

What it measures: speed only. The weights are random (built from
../shared/models/llama-3.1-8b/config.json) and the real Llama 3 tokenizer is not available, so the
prompts are random token ids of realistic length (~180 tokens, then "Price is $") over a
synthetic word-level tokenizer with the model's vocabulary size whose first tokens are the digits
and ".": the predictors run exactly as on a real model, and `expected` expands its digit tree
with min_prob=0, so every level keeps `branches` open prefixes per item (its worst case).

    python benchmarks/gpu_predict.py              # CUDA, 8B shapes (~3 min on one H100)
    python benchmarks/gpu_predict.py --config .device/config.json   # where ../shared is absent
    python benchmarks/gpu_predict.py --tiny       # CPU, a tiny config: checks the script runs

One JSON line on stdout (the summary); the per-precision lines go to stderr as they come.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # pricer, not installed on a GPU box
from pricer.predict.extract import extract_price  # noqa: E402
from pricer.predict.llm import LLMPredictor  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "shared" / "models" / "llama-3.1-8b" / "config.json"
# The published shapes, used when the config file is not beside the repo (e.g. on a GPU box).
LLAMA_31_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
               "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
               "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
               "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192, "rope_type": "llama3"},
               "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": 128001}
SPECIAL = ["<pad>", "<eos>", "<unk>"]
WORDS = [str(d) for d in range(10)] + [".", "How", "much", "Price", "is", "$"]


def synthetic_tokenizer(vocab_size: int):
    """A word-level tokenizer with `vocab_size` tokens: specials, digits, ".", prompt words, w0..."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    names = SPECIAL + WORDS
    vocab = {w: i for i, w in enumerate(names + [f"w{i}" for i in range(vocab_size - len(names))])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>")


def random_prompts(n: int, vocab_size: int, seed: int = 42) -> list[str]:
    """n prompts of 170-190 random words (one token each), then the reference's question ending."""
    rng = random.Random(seed)
    first = len(SPECIAL) + len(WORDS)
    return [" ".join(f"w{rng.randrange(vocab_size - first)}" for _ in range(rng.randint(170, 190)))
            + " Price is $" for _ in range(n)]


def build_model(config_dict: dict, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{k: v for k, v in config_dict.items() if k not in ("architectures",)})
    config.pad_token_id = 0
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly: 16 GB, not 32 GB first
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval()


def to_4bit(model):
    """Swap every decoder Linear for a bitsandbytes NF4 one (double quantisation, bf16 compute),
    as `load_model(precision="4bit")` would load it; embeddings, norms and lm_head stay bf16."""
    import bitsandbytes as bnb

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, linear in list(parent.named_children()):
                if not isinstance(linear, torch.nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=False,
                                      compute_dtype=torch.bfloat16, compress_statistics=True,
                                      quant_type="nf4", device="meta")
                q.weight = bnb.nn.Params4bit(linear.weight.data, requires_grad=False,
                                             compress_statistics=True, quant_type="nf4")
                q.weight = q.weight.to(linear.weight.device)  # .to() quantises
                setattr(parent, name, q)
                del linear
    return model


def reference_loop(model, tokenizer, prompts, max_new_tokens=4):
    """The reference's model_predict, one item at a time."""
    from transformers import set_seed

    device = next(model.parameters()).device
    prices = []
    for prompt in prompts:
        set_seed(42)
        inputs = tokenizer.encode(prompt, return_tensors="pt").to(device)
        mask = torch.ones(inputs.shape, device=device, dtype=torch.long)
        with torch.no_grad():
            out = model.generate(inputs, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        prices.append(extract_price(tokenizer.decode(out[0])))
    return prices


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(fn, n, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return n / (time.perf_counter() - start)


def run_precision(model, tokenizer, prompts, args, device) -> dict:
    out = {}
    ref_prompts = prompts[: args.n_ref]
    reference_loop(model, tokenizer, ref_prompts[:1])  # warm-up
    out["reference_loop_items_s"] = rate(lambda: reference_loop(model, tokenizer, ref_prompts),
                                         len(ref_prompts), device)
    for method, n in (("greedy", args.n), ("topk", args.n), ("expected", args.n_expected)):
        options = {"min_prob": 0.0, "branches": args.branches} if method == "expected" else {}
        if method == "greedy" and args.max_new_tokens:
            options["max_new_tokens"] = args.max_new_tokens
        predictor = LLMPredictor(model, tokenizer, method, batch_size=args.batch_size, **options)
        predictor.predict(prompts[:2])  # warm-up
        out[f"{method}_items_s"] = rate(lambda: predictor.predict(prompts[:n]), n, device)
        out[f"{method}_speedup"] = out[f"{method}_items_s"] / out["reference_loop_items_s"]
    if device.startswith("cuda"):
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        torch.cuda.reset_peak_memory_stats()
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU (a dry run)")
    parser.add_argument("--n", type=int, default=None, help="items for the batched predictors")
    parser.add_argument("--n-ref", type=int, default=None, help="items for the per-item loop")
    parser.add_argument("--n-expected", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--branches", type=int, default=8)
    parser.add_argument("--no-4bit", action="store_true")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="greedy's new tokens (default: the predictor's own, 8 on this digit vocabulary; "
                             "4 does the reference loop's work)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="Llama-3.1-8B config.json")
    args = parser.parse_args()
    started = time.perf_counter()
    config = json.loads(args.config.read_text()) if args.config.exists() else dict(LLAMA_31_8B)
    if args.tiny:
        config |= {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                   "vocab_size": 1024}  # a small vocabulary: the 128k one dominates a tiny model
        device = "cpu"
        defaults = {"n": 16, "n_ref": 4, "n_expected": 8, "batch_size": 8}
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: use --tiny for a CPU dry run")
        device = "cuda"
        defaults = {"n": 512, "n_ref": 24, "n_expected": 256, "batch_size": 64}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    tokenizer = synthetic_tokenizer(config["vocab_size"])
    prompts = random_prompts(max(args.n, args.n_expected, args.n_ref), config["vocab_size"])
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "model": "Llama-3.1-8B shapes, random weights" + (" (tiny)" if args.tiny else ""),
               "prompt_tokens": sum(len(tokenizer(p)["input_ids"]) for p in prompts) / len(prompts),
               "batch_size": args.batch_size, "n": args.n, "n_ref": args.n_ref,
               "n_expected": args.n_expected, "branches": args.branches}
    model = build_model(config, device)
    summary["bf16"] = run_precision(model, tokenizer, prompts, args, device)
    try:
        import bitsandbytes  # noqa: F401
        have_bnb = not args.no_4bit
    except ImportError:
        have_bnb = False
    if have_bnb:
        try:
            model = to_4bit(model)
            if device == "cuda":
                torch.cuda.empty_cache()
            summary["4bit"] = run_precision(model, tokenizer, prompts, args, device)
        except Exception as e:  # noqa: BLE001 - report, keep the bf16 figures
            summary["4bit"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    summary["seconds"] = time.perf_counter() - started
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
