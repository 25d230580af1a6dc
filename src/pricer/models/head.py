"""The regression head: a small MLP on the language model's hidden states that predicts the price.

    prompt "... Price is $" -> decoder (LoRA, optionally only its first `num_layers` layers)
        -> of the top `head_layers` layers: the last token's hidden state and the mean over
           the prompt's tokens (`pooling`: last | mean | both), concatenated
        -> LayerNorm -> Linear -> GELU -> Dropout -> Linear -> z
    price = exp(mean + std * z) - 1          (z is the standardised log(1 + price))

The vocabulary projection (576 x 49,152 for SmolLM2, 4,096 x 128,256 for Llama 3) is never
computed: the decoder is called without its LM head. Trained on log price (so the loss is the
squared log error, RMSLE's square), a price can never come out negative, and the head sees the
whole prompt at once instead of writing digits one by one (price-is-right.md, section 3b: the
community's regression head beat the same model's generated prices, 38.82 vs 43.78).

Saved beside the LoRA adapter: `head.safetensors` (the MLP) and `head_config.json` (sizes, the
layers it reads, the log-price mean and std, the prompt it was trained on). Both the training
recipe (pricer.train.head) and the predictor (pricer.predict.head) use this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pricer.errors import PricerError, reading, writing
from pricer.models.run import HEAD_CONFIG, HEAD_WEIGHTS

FORMAT = "pricer-head/1"
POOLINGS = ("last", "mean", "both")


@dataclass
class HeadConfig:
    hidden_size: int          # the decoder's hidden size
    head_layers: int = 1      # read this many top layers
    pooling: str = "both"     # last (the last token) | mean (over the prompt's tokens) | both
    width: int = 256          # the MLP's hidden width
    dropout: float = 0.1
    num_layers: int | None = None  # decoder layers run (None: all of them)
    max_length: int = 128     # tokens per prompt (the description is shortened to fit)
    prompt_format: str = "2024"
    log_mean: float = 0.0     # standardisation of log(1 + price) over the training items
    log_std: float = 1.0

    def save(self, folder: Path) -> None:
        with writing(folder / HEAD_CONFIG):
            (folder / HEAD_CONFIG).write_text(json.dumps({"format": FORMAT, **asdict(self)}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "HeadConfig":
        path = Path(folder) / HEAD_CONFIG
        if not path.is_file():
            raise PricerError(f"{folder}: no {HEAD_CONFIG}: not a run trained with --head "
                              "regression (a LoRA run is read by --predictor greedy, topk or "
                              "expected)")
        with reading(path):
            saved = json.loads(path.read_text())
        if saved.pop("format", None) != FORMAT:
            raise PricerError(f"{path}: not a pricer head config ({FORMAT})")
        return cls(**saved)


class PriceHead(nn.Module):
    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        if config.pooling not in POOLINGS:
            raise PricerError(f"head pooling must be one of {', '.join(POOLINGS)}, got {config.pooling}")
        size = config.hidden_size * config.head_layers * (2 if config.pooling == "both" else 1)
        self.net = nn.Sequential(nn.LayerNorm(size), nn.Linear(size, config.width), nn.GELU(),
                                 nn.Dropout(config.dropout), nn.Linear(config.width, 1))

    def forward(self, hidden_states: tuple, mask: torch.Tensor) -> torch.Tensor:
        """z for each row: `hidden_states` as the decoder returns them (embeddings first, the
        final, normalised layer last), `mask` the attention mask of right-padded rows."""
        last = mask.sum(1) - 1
        rows = torch.arange(len(last), device=last.device)
        weights = (mask / mask.sum(1, keepdim=True)).unsqueeze(-1).to(hidden_states[-1].dtype)
        parts = []
        for h in hidden_states[-self.config.head_layers:]:
            if self.config.pooling in ("last", "both"):
                parts.append(h[rows, last])
            if self.config.pooling in ("mean", "both"):
                parts.append((h * weights).sum(1))
        return self.net(torch.cat(parts, dim=-1).float()).squeeze(-1)

    def price(self, z: torch.Tensor) -> torch.Tensor:
        return torch.expm1(self.config.log_mean + self.config.log_std * z.double()).clamp(min=0)


class HeadModel(nn.Module):
    """A (PEFT-wrapped) causal LM's decoder plus a PriceHead. `forward` returns the loss (weighted
    squared error on the standardised log price) when `labels` are given, and `z` always. It
    answers the calls the training recipe makes of a PEFT model (peft_config,
    get_nb_trainable_parameters, save_pretrained)."""

    main_input_name = "input_ids"

    def __init__(self, lm, head: PriceHead):
        super().__init__()
        self.lm, self.head = lm, head

    @property
    def peft_config(self):
        return self.lm.peft_config

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def forward(self, input_ids, attention_mask, labels=None, weights=None):
        decoder = self.lm.get_base_model().get_decoder() if hasattr(self.lm, "get_base_model") \
            else self.lm.get_decoder()
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                      output_hidden_states=True)
        return self.score(out.hidden_states, attention_mask, labels, weights)

    def score(self, hidden_states: tuple, attention_mask, labels=None, weights=None) -> dict:
        """z (and the loss, with labels) from the decoder's hidden states; pricer.train.frozen
        gives it hidden states whose frozen part comes from its cache."""
        z = self.head(hidden_states, attention_mask)
        if labels is None:
            return {"z": z}
        error = (z - labels.float()) ** 2
        loss = (error * weights).sum() / weights.sum() if weights is not None else error.mean()
        return {"loss": loss, "z": z}

    def save_pretrained(self, folder, **kwargs) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        self.lm.save_pretrained(folder, **kwargs)
        with writing(folder / HEAD_WEIGHTS):
            save_file({k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()},
                      str(folder / HEAD_WEIGHTS))
        self.head.config.save(folder)

    def load_head(self, folder) -> None:
        self.head.load_state_dict(load_head_weights(folder))


def load_head_weights(folder) -> dict:
    from safetensors.torch import load_file

    path = Path(folder) / HEAD_WEIGHTS
    if not path.is_file():
        raise PricerError(f"{folder}: no {HEAD_WEIGHTS}")
    with reading(path):
        return load_file(str(path))


def keep_layers(model, num_layers: int | None):
    """Run only the first `num_layers` decoder layers (the rest are dropped from memory)."""
    decoder = model.get_decoder()
    total = len(decoder.layers)
    if num_layers is None or num_layers == total:
        return model
    if not 1 <= num_layers <= total:
        raise PricerError(f"num_layers must be between 1 and {total} for this model, got {num_layers}")
    decoder.layers = decoder.layers[:num_layers]
    model.config.get_text_config().num_hidden_layers = num_layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:num_layers]
    return model


def pad_right(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of right-padded rows: the head reads each row's last real
    token and the mean over its real tokens through the mask (training and prediction)."""
    width = max(len(x) for x in ids)
    batch = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for row, x in enumerate(ids):
        batch[row, : len(x)] = torch.tensor(x)
        mask[row, : len(x)] = 1
    return batch, mask


def prompt_ids(tokenizer, prompt: str, max_length: int, prompt_format: str = "2024") -> tuple[list[int], bool]:
    """(token ids, shortened?) of a test prompt of at most `max_length` tokens: the question,
    the description cut to what fits, "Price is $". The three parts are tokenised apart, so the
    cut never splits the question or the prefix; training and prediction both use this."""
    from pricer.data.prompts import CHARS_PER_TOKEN, PRICE_PREFIX, description, format_prompt

    full = format_prompt(prompt, prompt_format, tokenizer)
    text = description(full)
    question = full[: full.index(text)] if text else full[: -len(PRICE_PREFIX)]
    head = tokenizer(question)["input_ids"]  # with BOS where the tokenizer adds one
    tail = tokenizer("\n\n" + PRICE_PREFIX, add_special_tokens=False)["input_ids"]
    room = max_length - len(head) - len(tail)
    if room < 1:
        raise PricerError(f"max_length {max_length} is too short for the question and the prefix")
    body = tokenizer(text.rstrip()[: CHARS_PER_TOKEN * max_length], add_special_tokens=False)["input_ids"]
    return head + body[:room] + tail, len(body) > room
