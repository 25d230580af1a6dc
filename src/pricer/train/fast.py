"""The fast training path: the LM head and the cross-entropy only where a label counts.

An item is ~150-180 tokens and only its price and EOS (3-8 tokens) carry loss. TRL 1.16's
SFTTrainer already avoids the [batch, seq, vocab] logits with a chunked LM head, but scores
only the labelled positions where Triton runs (CUDA/XPU); elsewhere (every CPU) it projects
every position through the vocabulary. `FastSFTTrainer.compute_loss` takes the decoder's last
hidden states, keeps the rows whose shifted label is not -100, and projects only those:

    loss = sum of -log p(label) over labelled tokens / num_items_in_batch

exactly TRL's reduction (fp32 softmax, the Trainer's token count across gradient accumulation
and processes), so the loss and the LoRA gradients are the plain path's (tests/test_fast_path.py).
With item weights (`prices_like`, `balance_prices`: a `weight` column in the data set) each
labelled token's term is multiplied by its item's weight; TRL has no per-item loss weights, so
only this path offers them.
Everything else (evaluation, outputs for metrics, models it does not know) goes to SFTTrainer.
"""

import torch
import torch.nn.functional as F
from trl import SFTTrainer

# config attributes that change the logits after the LM head (Gemma's softcapping, Cohere's
# scale, ...): the plain path knows them, this one does not, so `applies` says no
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier",
                    "lm_head_multiplier", "logits_scaling")


def applies(model) -> bool:
    """Whether the fast path computes the same loss as the plain one for `model` (a plain causal
    LM: a decoder, then a linear LM head, no logit transform, no MoE auxiliary loss)."""
    config = model.config.get_text_config()
    return (hasattr(model, "get_decoder") and model.get_output_embeddings() is not None
            and all(getattr(config, name, None) is None for name in LOGIT_TRANSFORMS)
            and getattr(config, "num_experts_per_tok", None) is None)


class FastSFTTrainer(SFTTrainer):
    """SFTTrainer whose training loss projects only the labelled positions through the LM head;
    `number_loss` (train/loss.py, `--loss ntl`) adds its weighted digit loss to the CE sum."""

    def __init__(self, *args, number_loss=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.number_loss = number_loss
        self.frozen = None  # a FrozenDecoder (train/frozen.py): the frozen layers read from a cache
        if "weight" in (getattr(self.train_dataset, "column_names", None) or ()):  # item weights
            self.data_collator = WeightsCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.get("weights")  # [batch]: each item's weight, or None
        inputs = {k: v for k, v in inputs.items() if k != "weights"}
        if return_outputs or not model.training or "labels" not in inputs \
                or self.args.loss_type != "nll" or self.label_smoother is not None \
                or self.compute_loss_func is not None:
            if weights is not None and model.training:
                raise RuntimeError("item weights need the fast path's own loss")
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        base = self.accelerator.unwrap_model(model)
        base = base.get_base_model() if hasattr(base, "get_base_model") else base
        targets = inputs["labels"][:, 1:]
        mask = targets != -100
        rows = self._hidden_states(model, base, inputs)[:, :-1][mask]
        # the head under the model's autocast (bf16 logits with bf16 mixed precision; accelerate
        # wraps only the forward in it), the softmax in fp32: what TRL's chunked head computes
        with self.accelerator.autocast():
            logits = base.get_output_embeddings()(rows).float()
        rows_weight = None if weights is None else weights.to(logits.device)[:, None].expand_as(mask)[mask]
        if rows_weight is None:
            nll = F.cross_entropy(logits, targets[mask], reduction="sum")
        else:  # each labelled token counts as much as its item
            nll = (F.cross_entropy(logits, targets[mask], reduction="none") * rows_weight).sum()
        if self.number_loss is not None:  # CE + weight x NTL, over the same token count
            ntl, digits = self.number_loss.number_loss(logits, targets[mask], rows_weight)
            nll = nll + self.number_loss.weight * ntl
            gather = self.accelerator.gather_for_metrics
            n = gather(digits.detach()).sum()
            self._metrics["train"]["ntl"].append((gather(ntl.detach()).sum() / n).item()
                                                 if n > 0 else 0.0)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        loss = nll / torch.as_tensor(count).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as TRL: DDP averages
        self._record_metrics(inputs, logits.detach(), targets[mask])
        return loss

    def _hidden_states(self, model, base, inputs):
        """The decoder's output (after its final norm) for the batch."""
        if self.frozen is not None:  # the frozen layers' output read from the cache
            with self.accelerator.autocast():
                return self.frozen.last_hidden_state(inputs["input_ids"], inputs["attention_mask"],
                                                     inputs.get("position_ids"))
        # the forward goes through DDP and PEFT as usual; a hook keeps the decoder's output and
        # an empty `logits_to_keep` makes the model's own LM head project nothing
        captured = {}

        def keep(module, args, out):  # returns None: the output goes on unchanged
            captured["hidden"] = out.last_hidden_state

        hook = base.get_decoder().register_forward_hook(keep)
        try:
            model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False,
                  logits_to_keep=torch.empty(0, dtype=torch.long, device=inputs["labels"].device))
        finally:
            hook.remove()
        return captured["hidden"]

    def _record_metrics(self, inputs, logits, targets) -> None:
        """The metrics SFTTrainer logs (entropy, mean_token_accuracy, num_tokens), from the
        labelled rows only."""
        gather = self.accelerator.gather_for_metrics
        logp = logits.log_softmax(-1)
        n = gather(torch.tensor(len(targets), device=logits.device)).sum()
        entropy = gather(-(logp.exp() * logp).sum()).sum()
        correct = gather((logits.argmax(-1) == targets).sum()).sum()
        metrics = self._metrics["train"]
        metrics["entropy"].append((entropy / n).item() if n > 0 else 0.0)
        metrics["mean_token_accuracy"].append((correct / n).item() if n > 0 else 0.0)
        if "attention_mask" in inputs:
            tokens = gather(inputs["attention_mask"].sum()).sum().item()
        else:
            tokens = gather(torch.tensor(inputs["position_ids"].size(1),
                                         device=logits.device)).sum().item()
        self._total_train_tokens += tokens // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]


class WeightsCollator:
    """The SFT collator's batch plus `weights`, each item's loss weight (its `weight` column)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples: list[dict]) -> dict:
        weights = torch.tensor([e["weight"] for e in examples], dtype=torch.float32)
        return self.collator([{k: v for k, v in e.items() if k != "weight"} for e in examples]) \
            | {"weights": weights}
