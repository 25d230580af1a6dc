"""`head`: the price from a run trained with `--head regression` (pricer.models.head).

One forward pass of the decoder (the first `num_layers` layers it was trained with, the LoRA
adapter merged in) per batch, the MLP head on the last token's hidden states, exp of the
predicted log price. No generation and no vocabulary projection: the cost of a prediction is
the cost of reading the prompt. Items are sorted by length and batched with right padding.

Heads trained on the same base model with LoRA on their top layers only (`lora_layers`) compute
the same bottom layers: an ensemble of them (`predict_heads`) runs those once per batch and each
head's own layers on their output (pricer.models.split), which gives each head's prices unchanged.
"""

from __future__ import annotations

import torch

from pricer.predict.base import Predictor, texts_of


class HeadPredictor(Predictor):
    name = "head"
    batch_size = 64

    def __init__(self, model, tokenizer, head, info: dict, batch_size: int = 32,
                 base_layers: int = 0):
        self.model, self.tokenizer, self.head, self.info = model, tokenizer, head, info
        self.chunk = batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
        # F: layers 0..F-1 are the base model's own (no LoRA) and below every state the head
        # reads, so another head on the same base computes them alike (0: none)
        self.base_layers = base_layers
        self._bottom_key: str | None = None

    def settings(self) -> dict:
        c = self.head.config
        return {**self.info, "head_layers": c.head_layers, "pooling": c.pooling, "num_layers": c.num_layers,
                "max_length": c.max_length, "prompt_format": c.prompt_format}

    def bottom_key(self) -> str | None:
        """Equal for two heads that compute the same hidden state `base_layers` from the same
        token ids in the same batches (None: nothing to share)."""
        if not self.base_layers:
            return None
        if self._bottom_key is None:
            import hashlib

            from pricer.models.split import bottom_fingerprint

            c, parameter = self.head.config, next(self.model.parameters())
            same = [self.info["model"], c.max_length, c.prompt_format, self.chunk, self.base_layers,
                    str(parameter.dtype), parameter.device.type,
                    bottom_fingerprint(self.model.get_decoder(), self.base_layers)]
            self._bottom_key = hashlib.sha256(repr(same).encode()).hexdigest()
        return self._bottom_key

    def predict(self, items) -> list[float | None]:
        return predict_heads([self], items)[0]


@torch.inference_mode()
def predict_heads(heads: list[HeadPredictor], items) -> list[list[float | None]]:
    """Each head's prices for `items`. Heads with one `bottom_key` (more than one of them) run
    the shared bottom layers once per batch, through the first head's model."""
    from pricer.models.head import pad_right, prompt_ids
    from pricer.models.split import bottom, top

    first = heads[0]
    shared = first.base_layers if len(heads) > 1 else 0
    if shared and any(h.bottom_key() != first.bottom_key() for h in heads):
        raise ValueError("predict_heads: these heads do not share their bottom layers")
    c = first.head.config
    ids = [prompt_ids(first.tokenizer, t, c.max_length, c.prompt_format)[0] for t in texts_of(items)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    prices: list[list[float | None]] = [[None] * len(ids) for _ in heads]
    device = next(first.model.parameters()).device
    for start in range(0, len(order), first.chunk):
        rows = order[start:start + first.chunk]
        batch, mask = pad_right([ids[i] for i in rows], first.pad_id)
        batch, mask = batch.to(device), mask.to(device)
        hidden = bottom(first.model.get_decoder(), shared, batch, mask) if shared else None
        for head, out in zip(heads, prices):
            decoder = head.model.get_decoder()
            states = top(decoder, shared, hidden, mask, output_hidden_states=True) if shared else \
                decoder(input_ids=batch, attention_mask=mask, use_cache=False, output_hidden_states=True)
            z = head.head(states.hidden_states, mask)
            for i, price in zip(rows, head.head.price(z).tolist()):
                out[i] = float(price)
    return prices


def shared_groups(predictors) -> list[list[HeadPredictor]]:
    """The heads among `predictors` that share their bottom layers, in groups of two or more."""
    groups: dict[str, list[HeadPredictor]] = {}
    for p in predictors:
        if isinstance(p, HeadPredictor) and p.bottom_key() is not None:
            groups.setdefault(p.bottom_key(), []).append(p)
    return [g for g in groups.values() if len(g) > 1]


def _base_layers(lm, head_layers: int) -> int:
    """F for a PEFT model before merging: its layers below the first one LoRA touches and below
    the lowest hidden state the head reads (0 when LoRA may touch every layer)."""
    touched = [c.layers_to_transform for c in lm.peft_config.values()]
    if not touched or any(t is None or t == [] for t in touched):
        return 0
    first = min(min(t) if isinstance(t, list) else t for t in touched)
    return max(0, min(first, len(lm.get_base_model().get_decoder().layers) + 1 - head_layers))


def load_head_predictor(model: str = "default", adapter: str | None = None,
                        precision: str = "auto", device: str | None = None,
                        batch_size: int = 32, name: str | None = None) -> HeadPredictor:
    """The base model cut to the run's layers, its LoRA adapter merged in, and its head."""
    from pricer.errors import PricerError
    from pricer.models.head import HeadConfig, PriceHead, keep_layers, load_head_weights
    from pricer.models.load import attach_adapter, load_base, load_tokenizer, resolve_adapter
    from pricer.models.precision import resolve_precision

    if adapter is None:
        raise PricerError("head: give the run trained with --head regression as --adapter RUN")
    folder = resolve_adapter(adapter)
    config = HeadConfig.load(folder)
    weights = load_head_weights(folder)
    settled = resolve_precision(precision, device, "inference")
    base = keep_layers(load_base(model, settled.name, settled.device), config.num_layers)
    lm = attach_adapter(base, str(folder))
    base_layers = 0 if settled.quantized else _base_layers(lm, config.head_layers)
    lm = lm.merge_and_unload() if not settled.quantized else lm
    lm.eval()
    head = PriceHead(config)
    head.load_state_dict(weights)
    head.to(next(lm.parameters()).device).eval()
    predictor = HeadPredictor(lm, load_tokenizer(model), head,
                              {"model": model, "adapter": str(adapter), "precision": settled.name,
                               "device": settled.device}, batch_size=batch_size,
                              base_layers=base_layers)
    predictor.name = name or "head"
    return predictor
