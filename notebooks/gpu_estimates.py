"""ESTIMATES of GPU memory and training time per GPU class for the notebook's recipe (docs/gpu.md).

    .venv/bin/python notebooks/gpu_estimates.py [--json]

Weights: `pricer model memory --model-config CONFIG --r 32 --json` (exact to the byte on the H200,
docs/models.md). On top, from the shapes: LoRA gradients and AdamW states, activations at the
recipe's batch and sequence length (gradient checkpointing: each layer's input kept, one layer's
activations rebuilt at a time), the dequantised bf16 copy of the largest weight. Checked against
the one measured peak (H200, docs/measurements/gpu_train_h200.json).

Time per step on GPU X = fixed + FLOPs / (X's dense fp16/bf16 TFLOP/s x 0.5) + bytes / X's memory
bandwidth, where `fixed` (kernel launches, Python, optimiser: what does not scale with the GPU) is
what the measured H200 step leaves after its own compute and memory parts.
"""

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "docs" / "measurements" / "gpu_train_h200.json"
LLAMA_8B = ROOT.parent / "shared" / "models" / "llama-3.1-8b"
# meta-llama/Llama-3.2-3B's config.json (the shapes that matter here)
LLAMA_3B = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 3072,
            "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
            "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
            "tie_word_embeddings": True, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0, "hidden_act": "silu",
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
# NVIDIA's data sheets: memory (GB), dense fp16/bf16 tensor TFLOP/s (no sparsity), bandwidth GB/s
GPUS = {"T4 16 GB": (16, 65, 320, False), "L4 24 GB": (24, 121, 300, True),
        "A100 40 GB": (40, 312, 1555, True), "A100 80 GB": (80, 312, 2039, True),
        "H200 141 GB": (141, 989, 4800, True)}
MATMUL_EFFICIENCY = 0.5  # share of the data-sheet TFLOP/s that the matmuls reach (assumed)
HEADROOM_GB = 1.0        # CUDA context and allocator slack on top of the peak allocated
# the recipes: reference (2024 course) and reference-2025-lite (batch 32, 128 tokens)
RECIPES = {"Llama 3.1 8B, QLoRA (reference)": (LLAMA_8B, 4, 182, 166),
           "Llama 3.2 3B, QLoRA (reference-2025-lite)": (LLAMA_3B, 32, 128, 120)}
LORA_R, LORA_TARGETS = 32, 4  # r 32 on q/k/v/o


@functools.cache
def weights(config) -> dict:
    """`pricer model memory --model-config ... --json`: bytes per precision, with the adapter."""
    done = subprocess.run([sys.executable, "-m", "pricer", "model", "memory", "--model-config",
                           str(config), "--r", str(LORA_R), "--json"],
                          capture_output=True, text=True, check=True)
    return {row["precision"]: row["with_adapter_bytes"] for row in json.loads(done.stdout)["rows"]}


def shapes(config: dict) -> dict:
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * inter)  # q, o, k, v, gate, up, down
    lora = layers * LORA_R * (2 * (h + h) + 2 * (h + kv))
    return {"h": h, "inter": inter, "layers": layers, "kv": kv, "linear": linear, "lora": lora}


def peak_gb(config: dict, weight_bytes: int, batch: int, length: int) -> float:
    """Peak allocated GPU memory of a QLoRA step with gradient checkpointing, in GB."""
    s = shapes(config)
    h, inter, tokens = s["h"], s["inter"], batch * length
    optimiser = s["lora"] * (4 + 8)                       # fp32 gradients + AdamW's two moments
    kept = tokens * s["layers"] * h * 2                   # each layer's input, bf16
    # one layer rebuilt for its backward, bf16: norms, q/k/v/o inputs and outputs, attention
    # output, residual, LoRA dropout copies of the inputs, gate/up/act/product of the MLP
    layer = tokens * 2 * (10 * h + 2 * s["kv"] + 4 * inter)
    dequantised = 2 * 2 * h * inter                       # a bf16 copy of an MLP weight, twice
    return (weight_bytes + optimiser + kept + layer + dequantised) / 1e9


def step_parts(config: dict, tokens: int, tflops: float, bandwidth: float) -> tuple[float, float]:
    """(compute s, memory s) of one QLoRA step: three passes over the decoder's linear weights
    (forward, its recomputation, the backward to the inputs), 2 FLOPs per weight and token each;
    each pass dequantises every 4-bit weight (read 0.5 B, write 2 B, the matmul reads 2 B)."""
    linear = shapes(config)["linear"]
    return (3 * 2 * linear * tokens / (tflops * 1e12 * MATMUL_EFFICIENCY),
            3 * 4.5 * linear / (bandwidth * 1e9))


def estimate() -> dict:
    measured = json.loads(MEASURED.read_text())["4bit"]["ours"]
    config_8b = json.loads((LLAMA_8B / "config.json").read_text())
    h200 = GPUS["H200 141 GB"]
    tokens = measured["tokens_per_s"] * measured["s_per_step"]          # real tokens per step
    compute, memory = step_parts(config_8b, tokens, h200[1], h200[2])
    fixed_8b = measured["s_per_step"] - compute - memory
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(LLAMA_3B))
        for recipe, (source, batch, length, mean_length) in RECIPES.items():
            config = source if isinstance(source, dict) else json.loads(
                (source / "config.json").read_text())
            weight = weights(str(folder if isinstance(source, dict) else source))["4bit"]
            peak = peak_gb(config, weight, batch, length)
            # the fixed part scales with the number of layers (launches per layer)
            fixed = fixed_8b * config["num_hidden_layers"] / config_8b["num_hidden_layers"]
            for gpu, (memory_gb, tflops, bandwidth, bf16) in GPUS.items():
                step_tokens = batch * mean_length
                c, m = step_parts(config, step_tokens, tflops, bandwidth)
                seconds = fixed + c + m
                rows.append({"recipe": recipe, "gpu": gpu, "batch": batch, "length": length,
                             "weights_gb": round(weight / 1e9, 2), "peak_gb": round(peak, 2),
                             "fits": peak + HEADROOM_GB <= memory_gb,
                             "compute": "bf16" if bf16 else "fp16",
                             "s_per_step": round(seconds, 2),
                             "tokens_per_s": round(step_tokens / seconds),
                             "hours_per_20k_items": round(20_000 / batch * seconds / 3600, 1)})
    check = peak_gb(config_8b, weights(str(LLAMA_8B))["4bit"], 4, 182)
    # the reference's own run: batch 16 on one A100 40 GB, ~8 hours per epoch of 400,000 items
    a100 = GPUS["A100 40 GB"]
    a100_step = fixed_8b + sum(step_parts(config_8b, 16 * 166, a100[1], a100[2]))
    return {"measured_h200": {"peak_gb": measured["peak_gb"], "s_per_step": measured["s_per_step"],
                              "tokens_per_s": measured["tokens_per_s"]},
            "model_at_h200": {"peak_gb": round(check, 2), "fixed_s": round(fixed_8b, 3),
                              "compute_s": round(compute, 3), "memory_s": round(memory, 3)},
            "reference_a100_batch16": {"s_per_step": round(a100_step, 2),
                                       "hours_per_400k_items": round(400_000 / 16 * a100_step / 3600, 1),
                                       "reported_hours": 8},
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object")
    result = estimate()
    if parser.parse_args().json:
        print(json.dumps(result, indent=1))
        return
    print("H200 measured:", result["measured_h200"], "model:", result["model_at_h200"])
    print("the reference's A100 40 GB run, batch 16:", result["reference_a100_batch16"])
    print("| recipe | GPU | compute | peak GB | fits | s/step | tokens/s | h per 20k items |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['recipe']} | {r['gpu']} | {r['compute']} | {r['peak_gb']} | "
              f"{'yes' if r['fits'] else 'no'} | {r['s_per_step']} | {r['tokens_per_s']:,} | "
              f"{r['hours_per_20k_items']} |")


if __name__ == "__main__":
    main()
