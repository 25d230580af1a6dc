"""Three training steps of a tiny run, watched: the one helper the loss and fast-path tests share."""

import torch

from pricer.train.config import load_config, resolve

# tolerances of two runs that must agree: fp32 sums in another order; bf16 autocast rounds
FP32 = dict(rtol=1e-5, atol=1e-7)
BF16_RELATIVE = 3e-2


def run_steps(tiny_llama, data_file, out, weigh=None, **settings):
    """Train 3 steps (batch 2 x accumulation 2) with `settings` over the defaults below; return
    the micro-batch losses, the LoRA gradients at each optimiser step (before clipping) and the
    trainer. `weigh(dataset)`, if given, returns the data set trained on (item weights)."""
    from transformers import TrainerCallback

    from pricer.models.load import load_tokenizer
    from pricer.train.dataset import load_train_items
    from pricer.train.fast import FastSFTTrainer
    from pricer.train.run import build_data, build_trainer

    config = resolve(load_config(None, dict(
        model=str(tiny_llama), data=str(data_file), out=str(out), max_steps=3, batch_size=2,
        grad_accum=2, learning_rate=1e-2, max_length=64, report_to="none", eval=False,
        precision="fp32", save_steps=100, logging_steps=1) | settings), "cpu")
    tokenizer = load_tokenizer(config.model)
    data, _ = build_data(config, load_train_items(config.data), tokenizer)
    grads: list[dict] = []

    class Grads(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()
                          if p.requires_grad})

    torch.manual_seed(0)  # the LoRA weights start the same in every run
    dataset = weigh(data.dataset) if weigh else data.dataset
    trainer = build_trainer(config, tokenizer, dataset, callbacks=[Grads()],
                            train_sampling_strategy="sequential", save_strategy="no")
    assert isinstance(trainer, FastSFTTrainer) == config.fast_path
    losses = []
    compute_loss = trainer.compute_loss

    def spy(*args, **kwargs):
        value = compute_loss(*args, **kwargs)
        losses.append(value.detach().float().item())
        return value

    trainer.compute_loss = spy
    trainer.train()
    return losses, grads, trainer
