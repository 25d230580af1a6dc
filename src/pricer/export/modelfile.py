"""An Ollama Modelfile for an exported GGUF: the prompt goes to the model as it is (raw
completion, no chat template), greedy decoding, and explicit stops so the model never runs on."""

from __future__ import annotations

NUM_PREDICT = 8  # "9999.00" and an end token; a price never needs more


def stop_tokens(tokenizer) -> list[str]:
    """The tokenizer's end tokens (eos, pad, unk: SmolLM2's <|im_end|> and <|endoftext|>);
    with `num_predict` they bound every answer even if the model never writes one."""
    stops = [tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token]
    return [s for i, s in enumerate(stops) if s and s not in stops[:i]]


def modelfile(gguf_file: str, tokenizer) -> str:
    lines = [
        f"FROM ./{gguf_file}",
        "# The prompt is the whole pricer prompt, ending with 'Price is $': raw completion.",
        'TEMPLATE "{{ .Prompt }}"',
        "PARAMETER temperature 0",
        "PARAMETER top_k 1",
        f"PARAMETER num_predict {NUM_PREDICT}",
    ]
    lines += [f"PARAMETER stop {_quoted(s)}" for s in stop_tokens(tokenizer)]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'
