"""A number-aware loss for the price the model writes (issue 20): cross-entropy plus Number Token
Loss (Zausinger et al., ICML 2025, arxiv 2411.02083; price-is-right.md section 10) on the price's
digit tokens.

    loss = (sum of CE over the labelled tokens + weight x sum of NTL over their digits) / N

The labelled tokens are the completion only ("{price}.00" + EOS: completion_only_loss), so a digit
in the prompt ("3.5 carat") is never touched; N is the Trainer's count of labelled tokens (across
gradient accumulation and processes), the same as for CE alone, so weight 0 is today's loss. At a
position whose label is a digit d, with p the model's distribution over the ten digit tokens (a
softmax over their logits only, in fp32, as `ntloss` does):

    ntl      Wasserstein-1 to the true digit: sum_k p_k |k - d|   (NTL-WAS, ntloss.NTLoss)
    ntl-mse  the expected digit's squared error: (sum_k p_k k - d)^2   (NTL-MSE, NTLossDotProduct)

so "199" for "200" costs less than "900". It assumes one digit per token (SmolLM2: "$1234.00" is
'1','2','3','4','.','0','0'); `for_run` refuses a tokenizer that writes numbers otherwise (Llama 3
has single tokens for 1-999).

Written here rather than taken from `ntloss` 0.3.2: that package needs loguru (not in our tested
set), adds digit tokens to the tokenizer it is given, wants [batch, seq, len(tokenizer)] logits
(our fast path has only the labelled rows, and padded vocabularies differ from len(tokenizer)) and
averages over its own token count, not the Trainer's; the loss itself is the few lines below.
"""

import torch
import torch.nn.functional as F

from pricer.errors import PricerError
from pricer.train.config import LOSSES

PROBE = "1234567890"  # every digit, written as a price is


def digit_token_ids(tokenizer, name: str = "the model") -> list[int]:
    """The token ids of "0".."9" as they appear in a price after "Price is $"; an error if the
    tokenizer does not write a price one digit per token."""
    from pricer.data.prompts import PRICE_PREFIX

    head = tokenizer(PRICE_PREFIX, add_special_tokens=False)["input_ids"]
    ids = tokenizer(PRICE_PREFIX + PROBE, add_special_tokens=False)["input_ids"]
    tail = ids[len(head):]
    if ids[:len(head)] != head or [tokenizer.decode([i]) for i in tail] != list(PROBE):
        pieces = [tokenizer.decode([i]) for i in tail]
        raise PricerError(f"loss ntl needs a tokenizer that writes one digit per token; {name} "
                          f"writes '{PROBE}' as {pieces}: use --loss ce")
    by_digit = dict(zip(PROBE, tail))
    return [by_digit[str(d)] for d in range(10)]


class PriceLoss:
    """Cross-entropy + `weight` x NTL (`kind`: ntl or ntl-mse) on the digit tokens `digit_ids`
    (ids of "0".."9"). The fast path adds `weight` x `number_loss` to its CE sum; the plain
    SFTTrainer calls the object itself as its `compute_loss_func`."""

    def __init__(self, kind: str, weight: float, digit_ids: list[int]):
        if kind not in LOSSES[1:]:
            raise PricerError(f"loss must be one of {', '.join(LOSSES[1:])} here, not {kind}")
        self.kind, self.weight, self.digit_ids = kind, float(weight), list(digit_ids)
        self._on: dict = {}  # device -> (ids, values)

    def _tensors(self, device):
        if device not in self._on:
            self._on[device] = (torch.tensor(self.digit_ids, device=device),
                                torch.arange(10, dtype=torch.float32, device=device))
        return self._on[device]

    def number_loss(self, logits: torch.Tensor, targets: torch.Tensor, row_weights=None):
        """(sum of the NTL over the rows whose target is a digit, not yet times `self.weight`
        (each row's term times `row_weights`, its item's weight, when given); how many such
        rows: both tensors), for `logits` [rows, vocab] and `targets` [rows] of labelled
        positions."""
        ids, values = self._tensors(logits.device)
        match = targets.unsqueeze(-1) == ids  # [rows, 10]
        digit = match.any(-1)
        if not digit.any():
            return logits.sum() * 0.0, digit.sum()  # in the graph: DDP wants every step to use it
        p = logits[digit].index_select(-1, ids).float().softmax(-1)  # [digits, 10]
        truth = values[match[digit].float().argmax(-1)]  # [digits]
        if self.kind == "ntl":
            per = (p * (values - truth.unsqueeze(-1)).abs()).sum(-1)
        else:
            per = ((p * values).sum(-1) - truth) ** 2
        if row_weights is not None:
            per = per * row_weights[digit].to(per.dtype)
        return per.sum(), digit.sum()

    def __call__(self, outputs, labels, num_items_in_batch=None):
        """The Trainer's `compute_loss_func`: the model's full logits and unshifted labels."""
        targets = labels[:, 1:]
        mask = targets != -100
        logits = outputs.logits[:, :-1][mask].float()
        total = F.cross_entropy(logits, targets[mask], reduction="sum")
        if self.weight:
            total = total + self.weight * self.number_loss(logits, targets[mask])[0]
        count = mask.sum() if num_items_in_batch is None else num_items_in_batch
        return total / torch.as_tensor(count).clamp(min=1)


def for_run(config, tokenizer) -> PriceLoss | None:
    """The run's number-aware loss (None: cross-entropy only, `loss: ce`)."""
    if config.loss == "ce":
        return None
    return PriceLoss(config.loss, config.loss_weight, digit_token_ids(tokenizer, config.model))


def trainer_args(config, tokenizer, fast_path: bool) -> dict:
    """The trainer's keyword arguments for the run's loss: none for ce, `number_loss` for the
    fast path (train/fast.py), `compute_loss_func` for the plain SFTTrainer (TRL 1.16 then runs
    a second, gradient-free forward for its metrics)."""
    loss = for_run(config, tokenizer)
    if loss is None:
        return {}
    return {"number_loss": loss} if fast_path else {"compute_loss_func": loss}
