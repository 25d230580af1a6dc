"""`head`: the price from a run trained with `--head regression` (pricer.models.head).

One forward pass of the decoder (the first `num_layers` layers it was trained with, the LoRA
adapter merged in) per batch, the MLP head on the last token's hidden states, exp of the
predicted log price. No generation and no vocabulary projection: the cost of a prediction is
the cost of reading the prompt. Items are sorted by length and batched with right padding.
"""

from __future__ import annotations

import torch

from pricer.predict.base import Predictor, texts_of


class HeadPredictor(Predictor):
    name = "head"
    batch_size = 64

    def __init__(self, model, tokenizer, head, info: dict, batch_size: int = 32):
        self.model, self.tokenizer, self.head, self.info = model, tokenizer, head, info
        self.chunk = batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id

    def settings(self) -> dict:
        c = self.head.config
        return {**self.info, "head_layers": c.head_layers, "pooling": c.pooling, "num_layers": c.num_layers,
                "max_length": c.max_length, "prompt_format": c.prompt_format}

    @torch.inference_mode()
    def predict(self, items) -> list[float | None]:
        from pricer.models.head import pad_right, prompt_ids

        c = self.head.config
        ids = [prompt_ids(self.tokenizer, t, c.max_length, c.prompt_format)[0] for t in texts_of(items)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        prices: list[float | None] = [None] * len(ids)
        device = next(self.model.parameters()).device
        decoder = self.model.get_decoder()
        for start in range(0, len(order), self.chunk):
            rows = order[start:start + self.chunk]
            batch, mask = pad_right([ids[i] for i in rows], self.pad_id)
            batch, mask = batch.to(device), mask.to(device)
            out = decoder(input_ids=batch, attention_mask=mask, use_cache=False,
                          output_hidden_states=True)
            z = self.head(out.hidden_states, mask)
            for i, price in zip(rows, self.head.price(z).tolist()):
                prices[i] = float(price)
        return prices


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
    lm = lm.merge_and_unload() if not settled.quantized else lm
    lm.eval()
    head = PriceHead(config)
    head.load_state_dict(weights)
    head.to(next(lm.parameters()).device).eval()
    predictor = HeadPredictor(lm, load_tokenizer(model), head,
                              {"model": model, "adapter": str(adapter), "precision": settled.name,
                               "device": settled.device}, batch_size=batch_size)
    predictor.name = name or "head"
    return predictor
