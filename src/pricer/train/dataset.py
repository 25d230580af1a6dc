"""Training items -> a prompt/completion `datasets.Dataset` for TRL's SFTTrainer.

prompt     = the test prompt in the run's prompt format (2024 or 2025), ending in "Price is $"
completion = "{round(price)}.00" + EOS

TRL masks the prompt (completion_only_loss), so only the price tokens and EOS carry loss, and the
model learns to stop after the price. TRL truncates over-long sequences from the END, which would
cut the price off; so we shorten the item description first (keeping the question, the
"Price is $" prefix and the completion) and count every item we shorten. A description is cut
to `CHARS_PER_TOKEN * max_length` characters before it is tokenised at all, so a huge one costs
no more than a normal one (no token is that long, so the tokens kept are the same).
"""

from dataclasses import dataclass

from pricer.data.items import Item, fingerprint, read_items
from pricer.data.prompts import CHARS_PER_TOKEN, PromptFormat, completion, description, format_prompts
from pricer.data.prompts import prompt_format as named_format
from pricer.errors import PricerError, reading



@dataclass
class TrainData:
    dataset: object  # datasets.Dataset with columns prompt, completion
    fingerprint: str  # sha256 of the (prompt, completion) pairs actually trained on
    n_items: int
    n_truncated: int  # descriptions shortened to fit max_length
    n_skipped: int  # items without a usable price (missing or <= 0)
    n_tokens: int  # tokens in the whole set (prompt + completion), after truncation
    max_tokens: int = 0  # tokens of the longest item (what a batch pads to at most)


def load_train_items(source: str, max_items: int | None = None) -> list[Item]:
    """The train split of a saved data set (or a whole file), its first `max_items` items."""
    with reading(source):  # a corrupt or unreadable file: one line naming it
        items = read_items(str(source), split="train")
    if not items:
        raise PricerError(f"{source}: the training split is empty")
    return items[:max_items] if max_items else items


def _fit(tokenizer, prompt: str, comp: str, max_length: int,
         fmt: PromptFormat) -> tuple[str, int, bool]:
    """(prompt, total tokens, shortened?) with the description cut so prompt+completion fits."""
    text = description(prompt)
    cut = len(text) > CHARS_PER_TOKEN * max_length
    if cut:  # bounded work: never tokenise megabytes
        text = text[:CHARS_PER_TOKEN * max_length]
        prompt = fmt.test_prompt(text)
    total = len(tokenizer(prompt + comp)["input_ids"])
    if total <= max_length:
        return prompt, total, cut
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    keep = len(ids) - (total - max_length)
    while keep > 0:
        # decode/encode may merge tokens differently at the cut: re-measure and step down if needed
        short = fmt.test_prompt(tokenizer.decode(ids[:keep]).rstrip())
        total = len(tokenizer(short + comp)["input_ids"])
        if total <= max_length:
            return short, total, True
        keep -= max(1, total - max_length)
    raise PricerError(f"max_length {max_length} is too short for the question and the price")


def build_dataset(items: list[Item], tokenizer, max_length: int, prompt_format: str = "2024",
                  balance_prices: bool = False, prices_like=None) -> TrainData:
    """The items with a usable price as prompt/completion pairs in `prompt_format` (a name of
    `pricer.data.prompts.FORMATS`; its token limit, if any, applies to the description first).
    With `balance_prices` or `prices_like` (prices), a `weight` column: each item's weight in
    the loss (pricer.data.balance.item_weights, as the regression head's)."""
    from datasets import Dataset

    from pricer.data.balance import item_weights

    fmt = named_format(prompt_format)
    eos = tokenizer.eos_token
    prompts, comps, kept, n_tokens, n_truncated, n_skipped, longest = [], [], [], 0, 0, 0, 0
    for item in items:
        if item.price is None or item.price <= 0:
            n_skipped += 1
            continue
        kept.append(item)
    formatted = format_prompts([item.prompt for item in kept], fmt.name, tokenizer)
    for item, prompt in zip(kept, formatted):
        comp = completion(item.price) + eos
        prompt, total, short = _fit(tokenizer, prompt, comp, max_length, fmt)
        prompts.append(prompt)
        comps.append(comp)
        n_tokens += total
        longest = max(longest, total)
        n_truncated += short
    if not prompts:
        raise PricerError("no training item has a usable price (> 0)")
    columns = {"prompt": prompts, "completion": comps}
    if balance_prices or prices_like is not None:
        columns["weight"] = item_weights([i.price for i in kept], balance_prices, prices_like).tolist()
    dataset = Dataset.from_dict(columns)
    return TrainData(dataset, fingerprint(kept), len(prompts), n_truncated,
                     n_skipped, n_tokens, longest)
