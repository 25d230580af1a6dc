"""Training with `--head regression`: the data and the trainer (the recipe is train/run.py's).

- data: each item is its test prompt as token ids (pricer.models.head.prompt_ids: at most
  max_length tokens, the description shortened to fit), a label z = standardised log(1 + price)
  and a loss weight (1, or with `balance_prices` the inverse share of its price band, so that
  every band counts the same however many cheap items the data holds);
- trainer: the HF Trainer (optimiser, schedule, clipping, checkpoints, resume, DDP, callbacks,
  as SFTTrainer) on a HeadModel; only the head gets its own learning rate, and checkpoints hold
  the adapter and the head, not the 135M-parameter base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import Trainer

from pricer.data.items import Item, fingerprint
from pricer.errors import PricerError

@dataclass
class HeadData:
    dataset: object  # datasets.Dataset: input_ids, labels, weights
    fingerprint: str
    n_items: int
    n_truncated: int
    n_skipped: int
    n_tokens: int
    log_mean: float
    log_std: float
    max_tokens: int = 0


def build_head_dataset(items: list[Item], tokenizer, max_length: int, prompt_format: str = "2024",
                       balance_prices: bool = False, prices_like=None) -> HeadData:
    from datasets import Dataset

    from pricer.models.head import prompt_ids

    kept = [i for i in items if i.price is not None and i.price > 0]
    if not kept:
        raise PricerError("no training item has a usable price (> 0)")
    ids, truncated = zip(*(prompt_ids(tokenizer, i.prompt, max_length, prompt_format) for i in kept))
    prices = np.array([i.price for i in kept], dtype=float)
    logs = np.log1p(prices)
    mean, std = float(logs.mean()), float(logs.std() or 1.0)
    from pricer.data.balance import item_weights

    weights = item_weights(prices, balance_prices, prices_like)
    dataset = Dataset.from_dict({"input_ids": list(ids), "labels": ((logs - mean) / std).tolist(),
                                 "weights": weights.tolist()})
    return HeadData(dataset, fingerprint(kept), len(kept), sum(truncated), len(items) - len(kept),
                    sum(len(x) for x in ids), mean, std, max(len(x) for x in ids))


class HeadCollator:
    """Right-padded input_ids and attention mask; labels and weights as float tensors."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        from pricer.models.head import pad_right

        ids, mask = pad_right([r["input_ids"] for r in rows], self.pad_id)
        return {"input_ids": ids, "attention_mask": mask,
                "labels": torch.tensor([r["labels"] for r in rows]),
                "weights": torch.tensor([r["weights"] for r in rows])}


class HeadTrainer(Trainer):
    """Trainer for a HeadModel: the head's parameters get `head_learning_rate`, the LoRA ones the
    run's learning rate; a checkpoint is the adapter plus the head (HeadModel.save_pretrained)."""

    def __init__(self, *args, head_learning_rate: float, **kwargs):
        self.head_learning_rate = head_learning_rate
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            model = self.model
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            decay = self.args.weight_decay
            lora = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
            head = [p for p in model.head.parameters() if p.requires_grad]
            self.optimizer = cls([{"params": lora, "weight_decay": decay},
                                  {"params": head, "weight_decay": decay,
                                   "lr": self.head_learning_rate}], **kwargs)
        return self.optimizer

    def _save(self, output_dir=None, state_dict=None):
        output_dir = output_dir or self.args.output_dir
        self.model.save_pretrained(output_dir, save_embedding_layers=False)
        torch.save(self.args, f"{output_dir}/training_args.bin")

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from pricer.models.load import load_run_weights

        load_run_weights(model or self.model, resume_from_checkpoint)


def build_head_trainer(config, tokenizer, dataset, model, log_mean: float, log_std: float,
                       lora, args, callbacks):
    """The HeadTrainer of a resolved config: LoRA (`lora`, a peft LoraConfig) on `model` (its
    first config.num_layers layers), a fresh PriceHead, the run's TrainingArguments `args`."""
    from peft import get_peft_model

    from pricer.models.head import HeadConfig, HeadModel, PriceHead, keep_layers

    keep_layers(model, config.num_layers)
    lm = get_peft_model(model, lora)
    torch.manual_seed(config.seed)
    head = PriceHead(HeadConfig(hidden_size=model.config.get_text_config().hidden_size,
                                head_layers=config.head_layers, pooling=config.head_pooling, width=config.head_width,
                                dropout=config.lora_dropout, num_layers=config.num_layers,
                                max_length=config.max_length, prompt_format=config.prompt_format,
                                log_mean=log_mean, log_std=log_std))
    head.to(next(model.parameters()).device)
    args.remove_unused_columns = False
    args.label_names = ["labels"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # the frozen bottom layers' output read from a cache, computed once (train/frozen.py)
    from pricer.train.frozen import use_frozen_cache

    head_model, dataset, collator, note = use_frozen_cache(config, HeadModel(lm, head), dataset,
                                                           HeadCollator(pad_id), args, pad_id)
    trainer = HeadTrainer(model=head_model, args=args, train_dataset=dataset, data_collator=collator,
                          callbacks=list(callbacks), head_learning_rate=config.head_learning_rate)
    trainer.frozen_note = note  # one line for `pricer train` to say
    return trainer
