"""Write a merged Llama-architecture model as one GGUF file (llama.cpp, Ollama, LM Studio...).

Written with the `gguf` package (llama.cpp's own Python writer, on PyPI) rather than by running
llama.cpp's converter script, which is not on PyPI; we support the one family pricer trains by
default (Llama architecture with a byte-level BPE tokenizer, as SmolLM2) and refuse the rest in
one line. What llama.cpp expects, and transformers' GGUF reader undoes:
- tensor names `token_embd`, `blk.N.attn_q`..., `output_norm`, `output` (absent when tied);
- the rows of attn_q / attn_k reordered per head from transformers' rotate-half layout to
  llama.cpp's interleaved rotary pairs (`permute_rotary`);
- 1-D tensors (norms) kept F32; 2-D weights F16, BF16 or Q8_0 (blocks of 32, one scale each);
- tokenizer metadata: model "gpt2" (byte-level BPE), the pre-tokenizer name, tokens in the
  byte-level spelling of tokenizer.json, token types (control for special tokens), merges,
  special token ids, and add_bos_token false (the prompts are raw text).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pricer.errors import PricerError

TYPES = ("f16", "bf16", "q8_0")
# known byte-level BPE vocabularies -> llama.cpp's pre-tokenizer name (tokenizer.ggml.pre)
PRE_TOKENIZERS = {("<|endoftext|>", 49152): "smollm"}
HF_TO_GGUF = {  # transformers' Llama tensor names (per layer) -> llama.cpp's
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def gguf_name(name: str) -> str:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`."""
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    parts = name.split(".")  # model layers N <module...> weight
    if parts[:2] == ["model", "layers"]:
        module = ".".join(parts[3:-1])
        if module in HF_TO_GGUF:
            return f"blk.{parts[2]}.{HF_TO_GGUF[module]}.{parts[-1]}"
    raise PricerError(f"GGUF export: unexpected tensor '{name}' for a Llama model")


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection, per head, from [x0..x(d/2-1), y0..y(d/2-1)] (transformers'
    rotate_half) to [x0, y0, x1, y1, ...] (llama.cpp's rope on consecutive pairs)."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def check_supported(config) -> None:
    if getattr(config, "model_type", None) != "llama":
        raise PricerError(f"GGUF export supports Llama-architecture models; this one is "
                          f"'{getattr(config, 'model_type', '?')}' (use --merge and llama.cpp's "
                          "convert_hf_to_gguf.py)")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise PricerError(f"GGUF export: rope type '{rope.get('rope_type')}' is not supported "
                          "(only plain rope)")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise PricerError("GGUF export: Llama models with biases are not supported")


def tokenizer_fields(tokenizer, vocab_size: int) -> dict:
    """Tokens (padded to the model's vocabulary), token types, merges, pre-tokenizer."""
    from gguf import TokenType

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise PricerError("GGUF export supports byte-level BPE tokenizers only")
    vocab = tokenizer.get_vocab()  # spelled as in tokenizer.json (byte-level alphabet)
    by_id = {i: t for t, i in vocab.items()}
    pre = PRE_TOKENIZERS.get((by_id.get(0), len(vocab)))
    if pre is None:
        raise PricerError("GGUF export: unknown tokenizer (pricer knows SmolLM2's); use --merge "
                          "and llama.cpp's convert_hf_to_gguf.py")
    added = {a["id"]: a for a in spec.get("added_tokens", [])}
    special = set(tokenizer.all_special_ids)
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # rows of a padded embedding matrix: no text
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
            continue
        tokens.append(by_id[i])
        if i in special or added.get(i, {}).get("special"):
            types.append(TokenType.CONTROL)
        elif i in added:
            types.append(TokenType.USER_DEFINED)
        else:
            types.append(TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return {"tokens": tokens, "types": types, "merges": merges, "pre": pre}


def write_gguf(model, tokenizer, path: Path, outtype: str = "f16", name: str = "pricer") -> Path:
    """`model` (a transformers LlamaForCausalLM, any dtype, on the CPU) as one GGUF file."""
    import torch
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType
    from gguf.quants import quantize

    if outtype not in TYPES:
        raise PricerError(f"unknown GGUF type '{outtype}' (choose from {', '.join(TYPES)})")
    config = model.config
    check_supported(config)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    qtype, ftype = {"f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
                    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
                    "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0)}[outtype]
    tok = tokenizer_fields(tokenizer, config.vocab_size)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_file_type(ftype)
    writer.add_quantization_version(2)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tok["pre"])
    writer.add_token_list(tok["tokens"])
    writer.add_token_types(tok["types"])
    writer.add_token_merges(tok["merges"])
    for add, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                          (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if token_id is not None:
            add(int(token_id))
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)

    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
            continue  # tied: llama.cpp reuses token_embd
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if ".q_proj." in hf_name:
            data = permute_rotary(data, heads)
        elif ".k_proj." in hf_name:
            data = permute_rotary(data, kv_heads)
        if data.ndim == 1:  # norms stay F32, as llama.cpp's converter keeps them
            writer.add_tensor(gguf_name(hf_name), data)
        elif qtype == GGMLQuantizationType.F16:
            writer.add_tensor(gguf_name(hf_name), data.astype(np.float16))
        else:
            writer.add_tensor(gguf_name(hf_name), quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
