"""The frozen-layer cache of head runs (train/frozen.py, issue 19 part 3): the same loss and
gradients with and without it, a key that changes with model, precision, data and max length, and
no stale or half-written cache ever read. A tiny 4-layer Llama (real SmolLM2 tokenizer) made
here, real Amazon items; the runs keep 3 layers and train LoRA on the top one, so layers 0-1 are
frozen."""

import copy
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import AMAZON_TRAIN, ROOT, make_tiny_llama

N_ITEMS = 12


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory, default_model_dir):
    """A tiny Llama with 4 layers: room for frozen and trained ones."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny4"), default_model_dir, layers=4, seed=1)


@pytest.fixture(scope="module")
def items_file(tmp_path_factory):
    lines = open(AMAZON_TRAIN).readlines()[:N_ITEMS]
    path = tmp_path_factory.mktemp("items") / "train.jsonl"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "frozen"


def settings(model, data, out, **more) -> dict:
    return {"model": str(model), "data": str(data), "out": str(out), "head": "regression",
            "num_layers": 3, "lora_layers": 1, "max_length": 64, "batch_size": 4,
            "lora_dropout": 0.0, "report_to": "none", "eval": False, "bf16": False,
            "learning_rate": 5e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
            "logging_steps": 1, "save_steps": 1000, **more}


def trainer_for(model, data, out, **more):
    from pricer.models.load import load_tokenizer
    from pricer.train.config import load_config, resolve
    from pricer.train.dataset import load_train_items
    from pricer.train.run import build_data, build_trainer

    config = resolve(load_config(None, settings(model, data, out, **more)), None)
    tokenizer = load_tokenizer(config.model)
    data, stats = build_data(config, load_train_items(config.data), tokenizer)
    return build_trainer(config, tokenizer, data.dataset, head_stats=stats), data


def loss_and_gradients(trainer, batch):
    trainer.model.train()
    trainer.model.zero_grad()
    loss = trainer.model(**batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()
                           if p.requires_grad and p.grad is not None}


def same_random_weights(one, other) -> None:
    """LoRA B starts at 0: give every trainable weight a value, the same in both models."""
    torch.manual_seed(7)
    for (name, a), (name_other, b) in zip(one.named_parameters(), other.named_parameters()):
        assert name == name_other
        if a.requires_grad:
            with torch.no_grad():
                a.copy_(torch.randn_like(a) * 0.05)
                b.copy_(a)


@pytest.mark.parametrize("head_layers,bf16", [(1, False), (3, False), (1, True)])
def test_same_loss_and_gradients_with_and_without_the_cache(tiny4, items_file, cache_root, tmp_path,
                                                            head_layers, bf16):
    """head_layers 3 also reads the output of frozen layer 1 (stored beside the boundary state)."""
    from pricer.train.frozen import CachedHeadModel

    off, _ = trainer_for(tiny4, items_file, tmp_path / "off", head_layers=head_layers,
                         frozen_cache=False, bf16=bf16)
    on, _ = trainer_for(tiny4, items_file, tmp_path / "on", head_layers=head_layers,
                        frozen_cache=True, bf16=bf16)
    assert isinstance(on.model, CachedHeadModel) and not isinstance(off.model, CachedHeadModel)
    assert on.model.cache.states == ([2] if head_layers == 1 else [1, 2])
    same_random_weights(off.model, on.model)
    rows = [on.train_dataset[i] for i in (3, 0, 7, 11, 5)]  # lengths differ: padding in the batch
    batch = on.data_collator(rows)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "weights", "rows"}
    plain = {k: v for k, v in batch.items() if k != "rows"}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with autocast:
        loss_off, grads_off = loss_and_gradients(off, plain)
        loss_on, grads_on = loss_and_gradients(on, batch)
    assert grads_off.keys() == grads_on.keys() and len(grads_off) > 2
    assert any(k.startswith("lm.") for k in grads_off) and any(k.startswith("head.") for k in grads_off)
    rtol = 2e-2 if bf16 else 1e-5
    assert float(loss_on) == pytest.approx(float(loss_off), rel=rtol)
    for name, g in grads_off.items():
        assert float((grads_on[name] - g).norm() / g.norm().clamp(min=1e-12)) < (3e-2 if bf16 else 1e-4), name


def test_train_gives_the_same_losses_and_reuses_the_cache(tiny4, items_file, cache_root, tmp_path):
    """Two epochs through `train`: the logged losses with the cache equal those without; a later
    run (an --init-from epoch) reads the cache instead of computing it."""
    from pricer.train import load_config, train

    def run(name, **more):
        said = []
        torch.manual_seed(0)  # LoRA's initial A comes from the process's RNG, before the Trainer seeds it
        out = train(load_config(None, settings(tiny4, items_file, tmp_path / name, **({"epochs": 2} | more))),
                    say=said.append)
        return json.loads((out / "run_card.json").read_text())["losses"], said

    off, said_off = run("off", frozen_cache=False)
    on, said_on = run("on")
    assert len(off) == 6 and on == pytest.approx(off, rel=1e-4)
    assert any("frozen layers 0-1 computed at every step" in s for s in said_off)
    assert any("frozen layers 0-1: output of 12 items computed once" in s for s in said_on)
    _, said_next = run("next", init_from=str(tmp_path / "on"), epochs=1)
    assert any("read from an earlier run" in s for s in said_next), said_next
    assert len(list(cache_root.iterdir())) == 1


def test_the_key_changes_with_model_precision_data_and_max_length(tiny4, items_file, cache_root,
                                                                 tmp_path):
    from pricer.train.frozen import cache_key

    trainer, _ = trainer_for(tiny4, items_file, tmp_path / "k", frozen_cache=True)
    model = trainer.model
    ids = trainer.train_dataset["input_ids"]

    def key(m=model, rows=ids, **more):
        args = {"model_name": str(tiny4), "max_length": 64, "prompt_format": "2024",
                "autocast": None} | more
        return cache_key(m, 2, [2], rows, **args)

    base = key()
    assert key() == base  # deterministic
    other_weights = copy.deepcopy(model)
    with torch.no_grad():
        other_weights.lm.get_base_model().model.layers[1].mlp.up_proj.weight[0, 0] += 1e-3
    above = copy.deepcopy(model)  # layer 2 is trained: not part of the frozen output
    with torch.no_grad():
        above.lm.get_base_model().model.layers[2].self_attn.q_proj.base_layer.weight[0, 0] += 1e-3
    changed = {
        "model name": key(model_name="another/model"),
        "frozen weights": key(m=other_weights),
        "weights dtype": key(m=copy.deepcopy(model).to(torch.bfloat16)),
        "autocast": key(autocast=torch.bfloat16),
        "data": key(rows=[ids[1], ids[0], *ids[2:]]),
        "one token": key(rows=[[*ids[0][:-1], ids[0][-1] + 1], *ids[1:]]),
        "fewer items": key(rows=ids[:-1]),
        "max length": key(max_length=48),
        "prompt format": key(prompt_format="2025"),
    }
    for what, k in changed.items():
        assert k != base, what
    assert key(m=above) == base
    # a shorter max_length also gives other token ids, so other data
    short, _ = trainer_for(tiny4, items_file, tmp_path / "s", frozen_cache=True, max_length=40)
    assert short.model.cache.path != trainer.model.cache.path


def test_a_cache_of_another_key_or_a_changed_one_is_never_read(tiny4, items_file, cache_root,
                                                               tmp_path):
    from pricer.models.head import pad_right
    from pricer.train.frozen import cache_key, decoder_of, folder_name, open_cache

    trainer, _ = trainer_for(tiny4, items_file, tmp_path / "a", frozen_cache=True)
    model, ids = trainer.model, trainer.train_dataset["input_ids"]
    assert trainer.model.cache.built_s is not None
    key = cache_key(model, 2, [2], ids, model_name=str(tiny4), max_length=64,
                    prompt_format="2024", autocast=None)
    again = open_cache(model, 2, [2], ids, 0, key)
    assert again.built_s is None and again.path == trainer.model.cache.path  # read, not built
    # what it holds is the decoder's hidden state 2 of each item, alone
    batch, mask = pad_right([ids[4]], 0)
    with torch.no_grad():
        want = decoder_of(model)(input_ids=batch, attention_mask=mask,
                                 output_hidden_states=True).hidden_states[2][0]
    start, length = again.index[4]
    assert torch.allclose(torch.from_numpy(again.hidden[0, start:start + length].copy()), want,
                          rtol=1e-5, atol=1e-6)
    # other data: its own folder, built anew; the first one is left as it was
    other = open_cache(model, 2, [2], ids[:-1], 0, key | {"items": len(ids) - 1,
                                                          "tokens": sum(map(len, ids[:-1])),
                                                          "data": "other"})
    assert other.built_s is not None and other.path != again.path
    # a folder under this key's name whose contents say another key (or are cut short) is rebuilt
    meta = again.path / "meta.json"
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps(saved | {"key": saved["key"] | {"frozen_weights": "stale"}}))
    os.utime(other.path / "meta.json", (0, 0))  # unused for years: removed at the next build
    rebuilt = open_cache(model, 2, [2], ids, 0, key)
    assert rebuilt.built_s is not None and rebuilt.path.name == folder_name(key)
    assert not other.path.exists()
    (rebuilt.path / "index.npy").write_bytes(b"cut")
    assert open_cache(model, 2, [2], ids, 0, key).built_s is not None


KILL = """
import os, signal, sys
from pricer.train import frozen, load_config, train
frozen.BUILD_BATCH = 2
write, done = frozen._write_rows, []
def write_then_die(*args):
    write(*args)
    done.append(1)
    if len(done) == 3:  # half the items written
        os.kill(os.getpid(), signal.SIGKILL)
frozen._write_rows = write_then_die
train(load_config(None, {settings}))
"""


def test_a_killed_write_is_never_read(tiny4, items_file, cache_root, tmp_path):
    """SIGKILL in the middle of writing the cache: nothing complete is left; the next run builds
    the cache again (and removes the killed one's leftovers)."""
    script = KILL.replace("{settings}", repr(settings(tiny4, items_file, tmp_path / "killed")))
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    left = list(cache_root.iterdir())
    assert len(left) == 1 and ".part-" in left[0].name  # half-written, under its temporary name
    assert (left[0] / "hidden.npy").exists() and not (left[0] / "meta.json").exists()
    from pricer.train import load_config, train

    said = []
    train(load_config(None, settings(tiny4, items_file, tmp_path / "after")), say=said.append)
    assert any("computed once" in s for s in said), said
    assert [p.name for p in cache_root.iterdir()] == [left[0].name.split(".part-")[0]]


def test_off_where_not_exact_and_true_says_why(tiny4, items_file, cache_root, tmp_path):
    from pricer.errors import PricerError
    from pricer.train.frozen import CachedHeadModel

    every, _ = trainer_for(tiny4, items_file, tmp_path / "e", lora_layers=None)  # all layers trained
    assert not isinstance(every.model, CachedHeadModel) and every.frozen_note is None
    with pytest.raises(PricerError, match="every layer is trained"):
        trainer_for(tiny4, items_file, tmp_path / "t", lora_layers=None, frozen_cache=True)
    default, _ = trainer_for(tiny4, items_file, tmp_path / "d")
    assert isinstance(default.model, CachedHeadModel)  # auto: on, fp32 on a CPU is exact


# ---- the generation path (FastSFTTrainer reads the cache through a FrozenDecoder) ------------

def generation(**more) -> dict:
    """The generation recipe on the tiny Llama: all 4 layers run, LoRA on the top one."""
    return {"head": "none", "num_layers": None, "lora_layers": 1, "max_length": 320, **more}


def sft_loss_and_gradients(trainer, batch):
    trainer.model.train()
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()
                           if p.requires_grad and p.grad is not None}


@pytest.mark.parametrize("loss,bf16,balance", [("ce", False, False), ("ntl", False, False),
                                               ("ce", True, False), ("ntl", False, True)])
def test_generation_path_same_loss_and_gradients_with_and_without_the_cache(
        tiny4, items_file, cache_root, tmp_path, loss, bf16, balance):
    from pricer.train.frozen import FrozenDecoder

    same = dict(bf16=bf16, loss=loss, balance_prices=balance)  # balance: item weights
    off, _ = trainer_for(tiny4, items_file, tmp_path / "off", **generation(frozen_cache=False, **same))
    on, _ = trainer_for(tiny4, items_file, tmp_path / "on", **generation(frozen_cache=True, **same))
    assert off.frozen is None and isinstance(on.frozen, FrozenDecoder)
    assert on.frozen.cache.first == 3 and on.frozen.cache.states == [3]
    assert "frozen layers 0-2: output of 12 items computed once" in on.frozen_note
    same_random_weights(off.model, on.model)
    batch = on.data_collator([on.train_dataset[i] for i in (3, 0, 7, 11, 5)])  # padded: lengths differ
    assert int(batch["attention_mask"].sum(1).min()) < batch["input_ids"].shape[1]
    assert ("weights" in batch) == balance
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with autocast:
        loss_off, grads_off = sft_loss_and_gradients(off, batch)
        loss_on, grads_on = sft_loss_and_gradients(on, batch)
    assert grads_off.keys() == grads_on.keys() and len(grads_off) >= 4  # LoRA A and B of the top layer
    assert all(".layers.3." in name for name in grads_on)
    rtol = 2e-2 if bf16 else 1e-5
    assert float(loss_on) == pytest.approx(float(loss_off), rel=rtol)
    for name, g in grads_off.items():
        assert float((grads_on[name] - g).norm() / g.norm().clamp(min=1e-12)) < (3e-2 if bf16 else 1e-4), name
    # the cache is what is read: spoil it and the loss changes
    on.frozen.cache.hidden = on.frozen.cache.hidden * 0
    with autocast:
        spoiled, _ = sft_loss_and_gradients(on, batch)
    assert abs(float(spoiled) - float(loss_off)) > 1e-3


def test_generation_path_twin_runs_share_one_cache(tiny4, items_file, cache_root, tmp_path):
    """Two epochs through `train` give the same losses with and without the cache; the `ntl`
    twin of a `ce` run reads the cache the `ce` run wrote (the loss is not in the key)."""
    from pricer.train import load_config, train

    def run(name, **more):
        said = []
        torch.manual_seed(0)
        out = train(load_config(None, settings(tiny4, items_file, tmp_path / name,
                                               **generation(epochs=2, **more))), say=said.append)
        return json.loads((out / "run_card.json").read_text())["losses"], said

    off, said_off = run("off", frozen_cache=False)
    on, said_on = run("on")
    assert len(off) == 6 and on == pytest.approx(off, rel=1e-4)
    assert any("frozen layers 0-2 computed at every step (frozen_cache false)" in s for s in said_off)
    assert any("frozen layers 0-2: output of 12 items computed once" in s for s in said_on), said_on
    _, said_twin = run("twin", loss="ntl")
    assert any("frozen layers 0-2: output of 12 items read from an earlier run" in s
               for s in said_twin), said_twin
    assert len(list(cache_root.iterdir())) == 1


def test_generation_path_off_without_the_fast_path(tiny4, items_file, cache_root, tmp_path):
    from pricer.errors import PricerError

    plain, _ = trainer_for(tiny4, items_file, tmp_path / "p", **generation(fast_path=False))
    assert "frozen_cache off: the fast path is off" in plain.frozen_note
    assert not cache_root.exists() or not any(cache_root.iterdir())
    with pytest.raises(PricerError, match="the fast path is off"):
        trainer_for(tiny4, items_file, tmp_path / "t", **generation(fast_path=False, frozen_cache=True))
    every, _ = trainer_for(tiny4, items_file, tmp_path / "e", **generation(lora_layers=None))
    assert every.frozen is None and every.frozen_note is None


def test_auto_skips_the_cache_where_max_steps_sees_fewer_items(tiny4, items_file, cache_root,
                                                                tmp_path):
    """Computing all 12 items' frozen layers for 1 step of 4 would cost more than it saves."""
    short, _ = trainer_for(tiny4, items_file, tmp_path / "s", **generation(max_steps=1))
    assert short.frozen is None
    assert "frozen_cache off: max_steps 1 trains on 4 of the 12 items" in short.frozen_note
    head, _ = trainer_for(tiny4, items_file, tmp_path / "h", max_steps=2)
    assert "max_steps 2 trains on 8 of the 12 items" in head.frozen_note
    forced, _ = trainer_for(tiny4, items_file, tmp_path / "f", **generation(max_steps=1,
                                                                            frozen_cache=True))
    assert forced.frozen is not None  # true: as asked
    whole, _ = trainer_for(tiny4, items_file, tmp_path / "w", **generation(max_steps=3))
    assert whole.frozen is not None  # 3 steps of 4 see every item
