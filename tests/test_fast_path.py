"""The fast training path (train/fast.py, issue 12) computes the plain SFTTrainer's loss and LoRA
gradients: same tiny Llama, same items, same seed, three optimiser steps with gradient
accumulation, in fp32, with bf16 autocast, and as 4-bit QLoRA."""

import pytest
import torch

import trainsteps
from trainsteps import BF16_RELATIVE, FP32
from pricer.train.config import load_config, resolve

# The tolerances (tests/trainsteps.py: FP32, BF16_RELATIVE).
# fp32: the two paths differ only in the order of the LM head's sums, so they agree to float
# rounding, element by element. Under bf16 autocast (and 4-bit, which computes in bf16) both
# compute the same bf16 logits, but TRL's chunked head accumulates the gradient of its input in
# fp32 where autograd rounds it to bf16 (relative error 2^-8 = 0.4 %); that difference goes
# through the backward pass and, after the first update, into the later losses, so the bound
# there is on each gradient's norm and on the losses


def run_steps(tiny_llama, data_file, out, precision: str, fast_path: bool):
    """tests/trainsteps.py's 3 steps at `precision` (fp32, bf16 autocast or 4bit)."""
    return trainsteps.run_steps(
        tiny_llama, data_file, out, precision="4bit" if precision == "4bit" else "fp32",
        bf16=precision == "bf16", fast_path=fast_path,
        gradient_checkpointing=precision == "4bit")  # as resolve() sets


@pytest.mark.parametrize("precision", ["fp32", "bf16", "4bit"])
def test_fast_path_has_the_plain_loss_and_gradients(precision, tiny_llama, train_file, tmp_path):
    if precision == "4bit":
        from pricer.models.quant import bitsandbytes_problem

        if problem := bitsandbytes_problem("cpu"):
            pytest.skip(f"4-bit QLoRA cannot run on this CPU: {problem}")
    plain_losses, plain_grads, _ = run_steps(tiny_llama, train_file, tmp_path / "a", precision, False)
    fast_losses, fast_grads, trainer = run_steps(tiny_llama, train_file, tmp_path / "b", precision,
                                                 True)
    assert len(fast_losses) == len(plain_losses) == 6  # 3 steps x 2 micro-batches
    assert all(loss > 0 for loss in plain_losses)
    assert len(fast_grads) == len(plain_grads) == 3
    if precision == "fp32":
        torch.testing.assert_close(torch.tensor(fast_losses), torch.tensor(plain_losses), **FP32)
    else:  # the first two micro-batches run before any update: the same forward, same loss
        torch.testing.assert_close(torch.tensor(fast_losses[:2]), torch.tensor(plain_losses[:2]),
                                   rtol=1e-5, atol=0)
        torch.testing.assert_close(torch.tensor(fast_losses), torch.tensor(plain_losses),
                                   rtol=1e-3, atol=0)
    for fast, plain in zip(fast_grads, plain_grads):
        assert fast.keys() == plain.keys() and any("lora_A" in n for n in fast)
        for name in plain:
            if precision == "fp32":
                torch.testing.assert_close(fast[name], plain[name], **FP32, msg=name)
            else:
                error = (fast[name] - plain[name]).norm() / plain[name].norm().clamp(min=1e-12)
                assert error < BF16_RELATIVE, (name, error.item())
    assert all(g.abs().sum() > 0 for g in plain_grads[-1].values())  # every LoRA weight learns
    metrics = trainer.state.log_history[0]  # the metrics SFTTrainer logs are still there
    assert 0 <= metrics["mean_token_accuracy"] <= 1 and metrics["entropy"] > 0
    assert metrics["num_tokens"] > 0


def test_fast_path_is_the_default_and_can_be_refused(tiny_llama, train_file, tmp_path):
    from transformers import AutoModelForCausalLM

    from pricer.errors import PricerError
    from pricer.models.load import load_tokenizer
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.fast import FastSFTTrainer, applies
    from pricer.train.run import build_trainer

    assert load_config(None, {}).fast_path == "auto"
    assert load_config(None, {"fast_path": "false"}).fast_path is False
    config = resolve(load_config(None, dict(model=str(tiny_llama), data=str(train_file),
                                            out=str(tmp_path / "o"), report_to="none")), "cpu")
    tokenizer = load_tokenizer(config.model)
    data = build_dataset(load_train_items(config.data), tokenizer, config.max_length)
    assert isinstance(build_trainer(config, tokenizer, data.dataset), FastSFTTrainer)

    def softcapped():  # as Gemma 2: the fast path would compute another loss
        model = AutoModelForCausalLM.from_pretrained(tiny_llama)
        model.config.final_logit_softcapping = 30.0
        return model

    assert applies(AutoModelForCausalLM.from_pretrained(tiny_llama)) and not applies(softcapped())
    auto = build_trainer(config, tokenizer, data.dataset, model=softcapped())
    assert not isinstance(auto, FastSFTTrainer)
    forced = resolve(load_config(None, dict(config.to_dict(), fast_path=True)), "cpu")
    with pytest.raises(PricerError, match="fast_path"):
        build_trainer(forced, tokenizer, data.dataset, model=softcapped())
    plain = resolve(load_config(None, dict(config.to_dict(), fast_path=False)), "cpu")
    assert not isinstance(build_trainer(plain, tokenizer, data.dataset), FastSFTTrainer)
