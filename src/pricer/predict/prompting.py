"""What a language model reads: an item's description in the prompt format it was trained on
(pricer.data.prompts), as token ids that fit its limit with the "...Price is $" tail kept, so
that the model is still asked for the price. The one place this is done; only the language-model
predictors (greedy, topk, expected, gguf, vllm) call it.

Bounded work: a description is cut to CHARS_PER_TOKEN characters per token of the limit before
it is tokenised (no token is longer, so the tokens kept are the same), and the limit is the
run's max_length when the run records one: the model was never trained on longer prompts, and a
5 MB description then costs what a normal one does.
"""

from __future__ import annotations

from pricer.data.prompts import CHARS_PER_TOKEN, PRICE_PREFIX, format_prompts
from pricer.predict.base import texts_of

SUFFIX = "\n\n" + PRICE_PREFIX


def prompts_for(items, prompt_format: str, tokenizer=None) -> list[str]:
    """The test prompts of `items` in `prompt_format` (a format with a token limit cuts the
    description with `tokenizer`)."""
    return format_prompts(texts_of(items), prompt_format, tokenizer)


def encode(tokenizer, prompts: list[str], limit: int) -> tuple[list[list[int]], list[bool]]:
    """(token ids per prompt, whether it was cut): a prompt over `limit` tokens keeps its head
    and its "...Price is $" tail."""
    chars = limit * CHARS_PER_TOKEN
    cut_text = [len(p) > chars + len(SUFFIX) for p in prompts]
    prompts = [p[:chars] + p[-len(SUFFIX):] if cut else p for p, cut in zip(prompts, cut_text)]
    ids = tokenizer(list(prompts))["input_ids"]
    tail = len(tokenizer(SUFFIX, add_special_tokens=False)["input_ids"]) + 1
    truncated = [cut or len(x) > limit for x, cut in zip(ids, cut_text)]
    ids = [x[: limit - tail] + x[-tail:] if len(x) > limit else x for x in ids]
    return ids, truncated


def prompt_limit(context: int, run_config: dict | None = None) -> int:
    """Tokens a prompt may have: the model's `context` (less what the answer needs), or the
    run's max_length when it trained on less."""
    trained = (run_config or {}).get("max_length")
    return min(context, int(trained)) if trained else context
