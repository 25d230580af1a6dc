"""An Ollama Modelfile for an exported GGUF: the prompt goes to the model as it is (raw
completion, no chat template), greedy decoding, the family's end tokens as stops and a
`num_predict` that fits the longest price in the family's tokens, so the model never runs on."""

from __future__ import annotations

from pricer.data.prompts import PRICE_PREFIX

# end-of-text and end-of-turn tokens of the families pricer exports: Llama 3 (<|end_of_text|>,
# <|eot_id|>), Qwen 2.5 and SmolLM2 (<|endoftext|>, <|im_end|>); a tokenizer's own are kept
END_TOKENS = ("<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>")
LONGEST_PRICE = "99999.99"
# which GGUF the Modelfile runs when several were exported: Ollama's usual type first
PREFERRED = ("q4_k_m", "q8_0")


def stop_tokens(tokenizer) -> list[str]:
    """The tokenizer's eos and the family's end tokens that its vocabulary has."""
    vocab = tokenizer.get_vocab()
    stops = [tokenizer.eos_token] + [t for t in END_TOKENS if t in vocab]
    return [s for i, s in enumerate(stops) if s and s not in stops[:i]]


def num_predict(tokenizer) -> int:
    """Tokens of the longest price after the prompt ("99999.99": 4 for Llama 3, which writes up to
    3 digits a token, 8 for Qwen 2.5 and SmolLM2, one digit a token) and one end token."""
    def length(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return length(PRICE_PREFIX + LONGEST_PRICE) - length(PRICE_PREFIX) + 1


def chosen(gguf_types) -> str:
    """The type the Modelfile points at: q4_k_m when exported, else q8_0, else the first."""
    return next((t for t in PREFERRED if t in gguf_types), gguf_types[0])


def modelfile(gguf_file: str, tokenizer) -> str:
    lines = [
        f"FROM ./{gguf_file}",
        "# The prompt is the whole pricer prompt, ending with 'Price is $': raw completion.",
        'TEMPLATE "{{ .Prompt }}"',
        "PARAMETER temperature 0",
        "PARAMETER top_k 1",
        f"PARAMETER num_predict {num_predict(tokenizer)}",
    ]
    lines += [f"PARAMETER stop {_quoted(s)}" for s in stop_tokens(tokenizer)]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'
