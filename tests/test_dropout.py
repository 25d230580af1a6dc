"""train/dropout.py: the CPU dropout keeps torch's law, is fixed by torch's seed, and is in every
training run's model."""

import torch
from torch import nn

from pricer.train.dropout import FastDropout, use_fast_dropout


def test_same_law_as_torch_dropout():
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5
    drop = FastDropout(0.1).train()
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.0015  # 5 standard errors of 1e6 draws
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.9)
    # the mask differs from call to call, and from torch's own draws
    assert not torch.equal(drop(x) == 0, y == 0)


def test_seeded_by_torch_and_gradient_is_the_mask():
    x = torch.randn(64, 128, requires_grad=True)
    drop = FastDropout(0.25).train()
    torch.manual_seed(7)
    a = drop(x)
    torch.manual_seed(7)
    b = drop(x)
    assert torch.equal(a, b)
    a.sum().backward()
    assert torch.allclose(x.grad, (a != 0).float() / 0.75)


def test_identity_outside_training_and_at_zero():
    x = torch.randn(8, 8)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)


def test_every_dropout_of_a_model_is_swapped():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.2)))
    assert use_fast_dropout(model) == 2
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [type(m) for m in drops] == [FastDropout, FastDropout]
    assert [m.p for m in drops] == [0.1, 0.2]


def test_training_runs_use_it_and_the_plain_attention_on_a_cpu(tiny_llama, train_file, tmp_path):
    from pricer.models.load import load_tokenizer
    from pricer.train.config import load_config, resolve
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.run import build_data, build_trainer

    tokenizer = load_tokenizer(str(tiny_llama))
    for head in ("none", "regression"):
        config = resolve(load_config(None, dict(model=str(tiny_llama), data=str(train_file),
                                                out=str(tmp_path / head), report_to="none",
                                                max_length=96, batch_size=4, head=head,
                                                lora_dropout=0.05)), "cpu")
        if head == "none":
            data, stats = build_dataset(load_train_items(config.data), tokenizer, 96), (0.0, 1.0)
        else:
            data, stats = build_data(config, load_train_items(config.data), tokenizer)
        trainer = build_trainer(config, tokenizer, data.dataset, head_stats=stats)
        drops = [m for m in trainer.model.modules() if isinstance(m, nn.Dropout)]
        assert drops and all(type(m) is FastDropout and m.p == 0.05 for m in drops)
        attention = {m.config._attn_implementation for m in trainer.model.modules()
                     if hasattr(m, "config") and hasattr(m.config, "_attn_implementation")}
        assert attention == {"eager"}
