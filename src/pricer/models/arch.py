"""A model's architecture and its LoRA adapter's size, from the config alone (no weights).

Everything is computed twice: by hand from the config's numbers (so a learner can follow the
arithmetic), and by building the model on PyTorch's "meta" device (shapes without memory) and
wrapping it with PEFT, which must agree. That is cheap even for Llama 3.1 8B.
"""

from pathlib import Path

from pricer.errors import PricerError

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
TARGETS = ATTENTION + MLP
MB = 1e6


def read_config(config: str | Path | None = None, model: str | None = None,
                revision: str | None = None, trust_remote_code: bool = False):
    """The transformers config from a config.json (or its folder), or from a model."""
    from transformers import AutoConfig

    if config is not None:
        path = Path(config).expanduser()
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise PricerError(f"{config}: no such config file (give config.json or its folder)")
        name = str(config)
    else:
        from pricer.models.load import config_file

        name = model or "default"
        path = config_file(name, revision)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        from pricer.models.load import friendly

        raise friendly(e, name) from None


def shapes(config) -> dict:
    """The decoder's sizes and each linear layer's (in, out) features, from the config."""
    text = config.get_text_config()
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    hidden, inter = text.hidden_size, text.intermediate_size
    return {
        "layers": text.num_hidden_layers, "hidden_size": hidden, "heads": heads,
        "kv_heads": kv_heads, "head_dim": head_dim, "intermediate_size": inter,
        "vocab_size": text.vocab_size,
        "tied_embeddings": bool(getattr(text, "tie_word_embeddings", False)),
        "modules": {
            "q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv_heads * head_dim),
            "v_proj": (hidden, kv_heads * head_dim), "o_proj": (heads * head_dim, hidden),
            "gate_proj": (hidden, inter), "up_proj": (hidden, inter), "down_proj": (inter, hidden),
        },
    }


def base_params(s: dict, config) -> int:
    """Parameters of a Llama-style model counted from its shapes: embeddings, per layer the 7
    linear layers (+ biases if any) and 2 RMSNorms, the final norm, and lm_head unless tied."""
    text = config.get_text_config()
    attn_bias = sum(s["modules"][m][1] for m in ATTENTION) if getattr(text, "attention_bias", False) else 0
    mlp_bias = sum(s["modules"][m][1] for m in MLP) if getattr(text, "mlp_bias", False) else 0
    per_layer = sum(i * o for i, o in s["modules"].values()) + attn_bias + mlp_bias + 2 * s["hidden_size"]
    embeddings = s["vocab_size"] * s["hidden_size"]
    lm_head = 0 if s["tied_embeddings"] else embeddings
    return embeddings + s["layers"] * per_layer + s["hidden_size"] + lm_head


def meta_model(config):
    """The model built on the meta device: real module shapes, no memory, no weights."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def lora_report(config, r: int = 32, alpha: int = 64, targets=ATTENTION, name: str = "") -> dict:
    """Architecture, per-module LoRA sizes, totals and the meta-device/PEFT cross-check."""
    from peft import LoraConfig, get_peft_model

    if r < 1:
        raise PricerError(f"--r must be at least 1 (got {r})")
    targets = list(targets)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise PricerError(f"unknown LoRA target {', '.join(unknown)} (choose from {', '.join(TARGETS)})")
    s = shapes(config)
    modules = []
    for t in targets:
        fan_in, fan_out = s["modules"][t]
        modules.append({"name": t, "in": fan_in, "out": fan_out, "A": [r, fan_in], "B": [fan_out, r],
                        "params": r * (fan_in + fan_out), "base_params": fan_in * fan_out})
    per_layer = sum(m["params"] for m in modules)
    lora = per_layer * s["layers"]
    base = base_params(s, config)

    meta = meta_model(config)
    meta_base = sum(p.numel() for p in meta.parameters())
    peft = get_peft_model(meta, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                           task_type="CAUSAL_LM"))
    peft_lora, _ = peft.get_nb_trainable_parameters()
    return s | {
        "model": name, "architecture": (config.architectures or [config.model_type])[0],
        "r": r, "alpha": alpha, "scale": alpha / r, "targets": targets, "modules": modules,
        "lora_params_per_layer": per_layer, "lora_params": lora,
        "lora_mb_fp32": round(lora * 4 / MB, 1), "lora_mb_bf16": round(lora * 2 / MB, 1),
        "base_params": base, "base_params_meta": meta_base, "lora_params_peft": peft_lora,
        "trainable_fraction": lora / base, "cross_check_ok": base == meta_base and lora == peft_lora,
    }


def explain(rep: dict) -> str:
    """A plain-language walk through one attention block, around this model's real numbers."""
    h, hd, nh, nkv, r = rep["hidden_size"], rep["head_dim"], rep["heads"], rep["kv_heads"], rep["r"]
    q_out, kv_out = nh * hd, nkv * hd
    group = nh // nkv
    q_lora = r * (h + q_out)
    gqa = (f"Grouped-query attention: only {nkv} key/value heads, each shared by {group} query "
           f"heads, so k_proj and v_proj are {group}x smaller than q_proj (and so is the cache of "
           f"keys and values kept while generating)." if nkv < nh else
           "Every query head has its own key/value head (no grouped-query attention).")
    return "\n".join([
        f"One attention block of {rep['model'] or rep['architecture']} (there are {rep['layers']}, one "
        f"per layer). Each token arrives as a vector x of {h:,} numbers (the hidden size).",
        "",
        f"- Q = q_proj(x): {h:,} -> {nh} heads x {hd} = {q_out:,}. The query: what this token is looking for.",
        f"- K = k_proj(x): {h:,} -> {nkv} heads x {hd} = {kv_out:,}. The key: what each token offers to be found by.",
        f"- V = v_proj(x): {h:,} -> {kv_out:,}. The value: what a token passes on once it is attended to.",
        f"- {gqa}",
        f"- Attention: each query head scores every earlier token (Q.K / sqrt({hd})), softmax turns the "
        "scores into weights, and the weighted sum of the values is that head's output.",
        f"- O = o_proj(heads): {q_out:,} -> {h:,}. Mixes the {nh} heads back into one vector, added to x.",
        "",
        "LoRA keeps every weight W (out x in) frozen and adds a small trainable detour beside it: "
        "y = W x + (alpha / r) * B (A x), where A (r x in) squeezes x to r numbers and B (out x r) "
        f"expands them back. B starts at zero, so training starts from the unchanged base model. Here "
        f"r = {r} and alpha = {rep['alpha']}: the detour is scaled by alpha/r = {rep['scale']:g}. "
        f"For q_proj: A {r} x {h:,} + B {q_out:,} x {r} = {q_lora:,} trainable numbers beside the "
        f"{h * q_out:,} frozen ones ({q_lora / (h * q_out):.1%}).",
        "",
        "Why q/k/v/o: they decide which earlier tokens each token looks at and what it takes from "
        "them. Small low-rank changes there steer the model towards the new task (answering with a "
        "price) while the MLP layers, where much of its knowledge sits, stay untouched; and the "
        f"adapter stays tiny: {rep['lora_params']:,} parameters, {rep['trainable_fraction']:.2%} of "
        "the base model.",
    ])
