"""The reference system's prompt formats, by name (price-is-right.md, sections 1 and 3b).

"2024" (the default): train: "How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is ${round(price)}.00"
                      test:  the same up to and including "Price is $". No cut at prompt time
                      (curation already cut the text to 160 tokens).
"2025": the same shape with "What does this cost to the nearest dollar?", the description cut
        to 110 tokens of the model's tokenizer.

`format_prompt` turns a bare description or a prompt of any known format into the test prompt of
one format; `description` and `as_test_prompt` recognise every known format.
"""

from dataclasses import dataclass
from pricer.errors import PricerError

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"
DEFAULT_FORMAT = "2024"
CHARS_PER_TOKEN = 32  # no token is longer: text past N * 32 characters never reaches N tokens


@dataclass(frozen=True)
class PromptFormat:
    name: str
    question: str
    description_tokens: int | None  # the description is cut to this many tokens (None: no cut)

    def test_prompt(self, text: str) -> str:
        return test_prompt(text, self.question)

    def train_prompt(self, text: str, price: float) -> str:
        return train_prompt(text, price, self.question)


FORMATS = {
    "2024": PromptFormat("2024", QUESTION, None),
    "2025": PromptFormat("2025", "What does this cost to the nearest dollar?", 110),
}


def prompt_format(name: str) -> PromptFormat:
    """The format called `name` ("2024", "2025"); a PricerError naming the known ones otherwise."""
    found = FORMATS.get(str(name))
    if found is None:
        raise PricerError(f"unknown prompt format '{name}' (choose from {', '.join(FORMATS)})")
    return found


def test_prompt(text: str, question: str = QUESTION) -> str:
    """What the model sees at prediction time; it must continue with the price."""
    return f"{question}\n\n{text}\n\n{PRICE_PREFIX}"


def completion(price: float) -> str:
    """What the model learns to write after the prefix: whole dollars and `.00`, as the reference."""
    return f"{round(price)}.00"


def train_prompt(text: str, price: float, question: str = QUESTION) -> str:
    return test_prompt(text, question) + completion(price)


def _question_of(text: str, question: str | None = None) -> str | None:
    """The question `text` starts with when it is a prompt (has "Price is $"), else None."""
    if PRICE_PREFIX not in text:
        return None
    known = [question] if question else []
    known += [f.question for f in FORMATS.values()]
    return next((q for q in known if text.startswith(q)), None)


def as_test_prompt(text: str, question: str = QUESTION) -> str:
    """Accept a bare description, a test prompt or a full training prompt (of any known format);
    return the test prompt. A prompt keeps its own question; a description gets `question`."""
    if _question_of(text, question):
        return text[: text.rindex(PRICE_PREFIX) + len(PRICE_PREFIX)]
    return test_prompt(text, question)


def description(prompt: str, question: str = QUESTION) -> str:
    """The item description inside a prompt of any known format (inverse of `test_prompt`);
    a bare description is returned as it is."""
    asked = _question_of(prompt, question)
    if asked is None:
        return prompt
    text = prompt[: prompt.rindex(PRICE_PREFIX) + len(PRICE_PREFIX)]
    return text[len(asked) + 2 : -len(PRICE_PREFIX) - 2]


def cut_to_tokens(texts: list[str], n: int, tokenizer) -> list[str]:
    """Each text cut to its first `n` tokens (decoded, trailing space stripped); texts of at most
    `n` tokens are returned unchanged, so cutting twice changes nothing. Batched."""
    heads = [t[: n * CHARS_PER_TOKEN] for t in texts]  # bounded work for huge descriptions
    ids = tokenizer(heads, add_special_tokens=False)["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > n]
    out = list(texts)
    if not long:
        return out
    cuts = tokenizer.batch_decode([ids[i][:n] for i in long])
    counts = tokenizer([c.rstrip() for c in cuts], add_special_tokens=False)["input_ids"]
    for i, cut, again in zip(long, cuts, counts):
        keep = n
        # decode then encode can merge differently at the cut (n+1 tokens): step back until it fits
        while len(again) > n and keep > 1:
            keep -= 1
            cut = tokenizer.decode(ids[i][:keep])
            again = tokenizer(cut.rstrip(), add_special_tokens=False)["input_ids"]
        out[i] = cut.rstrip()
    return out


def format_prompt(prompt_or_text: str, fmt: str = DEFAULT_FORMAT, tokenizer=None) -> str:
    """The test prompt (ending "Price is $") in format `fmt`, from a bare description, a test
    prompt or a training prompt of any known format. With a tokenizer, a format with a token
    limit cuts the description to that many of the tokenizer's tokens."""
    return format_prompts([prompt_or_text], fmt, tokenizer)[0]


def format_prompts(prompts: list[str], fmt: str = DEFAULT_FORMAT, tokenizer=None) -> list[str]:
    """`format_prompt` for many prompts (the token cut in one batched tokenizer call)."""
    chosen = prompt_format(fmt)
    texts = [description(p) for p in prompts]
    if tokenizer is not None and chosen.description_tokens and texts:
        texts = cut_to_tokens(texts, chosen.description_tokens, tokenizer)
    return [chosen.test_prompt(t) for t in texts]
