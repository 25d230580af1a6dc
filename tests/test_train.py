"""Training (issue 5) on the tiny random Llama: loss masks, truncation, checkpoint + resume,
the run card, evaluation after training, two processes, bad input."""

import json
import shutil
from pathlib import Path

import pytest

from clirun import assert_ok, pricer
from conftest import AMAZON_TRAIN
from pricer.data.items import Item
from pricer.data.prompts import PRICE_PREFIX, completion
from pricer.data.prompts import test_prompt as make_prompt
from pricer.errors import PricerError
from pricer.train.config import load_config, resolve


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    """40 real items of the amazon-pricer training file."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    lines = AMAZON_TRAIN.read_text().splitlines()[:40]
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(tiny_llama, data, out, **extra):
    values = dict(model=str(tiny_llama), data=str(data), out=str(out), max_steps=4,
                  batch_size=4, save_steps=2, logging_steps=1, report_to="none", eval=False,
                  learning_rate=1e-2, max_length=96)
    return load_config(None, values | extra)


def test_only_the_price_and_eos_carry_loss(tiny_llama, train_file, tmp_path):
    """Collate a real batch the way SFTTrainer does and read back the labelled tokens."""
    from pricer.models.load import load_tokenizer
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.run import build_trainer

    config = resolve(tiny_config(tiny_llama, train_file, tmp_path / "out"), "cpu")
    tokenizer = load_tokenizer(config.model)
    items = load_train_items(config.data)
    data = build_dataset(items, tokenizer, config.max_length)
    trainer = build_trainer(config, tokenizer, data.dataset, train_sampling_strategy="sequential")
    assert trainer.model.peft_config["default"].base_model_name_or_path == str(tiny_llama)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 4
    for row in range(4):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        kept = labels[labels != -100]
        assert (kept == ids[labels != -100]).all()
        expected = completion(items[row].price) + tokenizer.eos_token
        assert tokenizer.decode(kept) == expected
        assert kept[-1].item() == tokenizer.eos_token_id
        prompt_part = tokenizer.decode(ids[: (labels != -100).nonzero()[0].item()])
        assert prompt_part.endswith(PRICE_PREFIX)
        assert len(ids) <= config.max_length


def test_long_prompts_are_shortened_keeping_the_price(tiny_llama, train_file):
    from pricer.models.load import load_tokenizer
    from pricer.train.dataset import build_dataset, load_train_items

    tokenizer = load_tokenizer(str(tiny_llama))
    items = load_train_items(str(train_file))
    data = build_dataset(items, tokenizer, max_length=64)
    assert data.n_items == 40 and data.n_truncated == 40  # real items are ~200 tokens long
    for row, item in zip(data.dataset, items):
        assert row["prompt"].endswith(PRICE_PREFIX)
        assert row["completion"] == completion(item.price) + tokenizer.eos_token
        assert len(tokenizer(row["prompt"] + row["completion"])["input_ids"]) <= 64
    roomy = build_dataset(items, tokenizer, max_length=1024)
    assert roomy.n_truncated == 0 and roomy.dataset[0]["prompt"] == items[0].prompt


def test_a_huge_description_is_cut_before_it_is_tokenised(tiny_llama):
    """Bounded work: a 5 MB description never reaches the tokenizer whole, and the prompt kept
    is the one the uncut text gives (the first tokens up to max_length)."""
    from pricer.models.load import load_tokenizer
    from pricer.train.dataset import CHARS_PER_TOKEN, build_dataset

    tokenizer = load_tokenizer(str(tiny_llama))
    longest = []

    class Spy:
        eos_token = tokenizer.eos_token

        def __call__(self, text, **kwargs):
            longest.append(len(text))
            return tokenizer(text, **kwargs)

        def decode(self, ids):
            return tokenizer.decode(ids)

    words = " ".join(f"word{i % 97}" for i in range(750_000))  # ~5 MB
    huge = Item("huge", make_prompt(words), 12.0, "x")
    normal = Item("normal", make_prompt(words[:3000]), 12.0, "x")
    data = build_dataset([huge, normal], Spy(), max_length=64)
    assert len(words) > 5_000_000 and max(longest) < CHARS_PER_TOKEN * 64 + 200
    assert data.n_truncated == 2
    assert data.dataset[0]["prompt"] == data.dataset[1]["prompt"]  # same first 64 tokens


def test_resume_reaches_the_same_weights_and_writes_a_run_card(tiny_llama, train_file, tmp_path):
    """Run 4 steps; separately, keep only checkpoint-2 (as if killed at step 3) and resume."""
    from safetensors.torch import load_file

    from pricer.train.run import train

    full = train(tiny_config(tiny_llama, train_file, tmp_path / "full"))
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "train_config.yaml", "data_fingerprint.json", "run_card.md", "run_card.json"):
        assert (full / name).exists(), name
    card = json.loads((full / "run_card.json").read_text())
    assert card["steps"] == 4 and card["items"] == 16 and card["truncated"] == 16  # 4 steps x 4
    assert card["final_loss"] > 0 and card["tokens_per_s"] > 0 and card["processes"] == 1
    assert card["base_model"] == str(tiny_llama) and card["lora_parameters"] == 28_672  # 2 layers x r 32 x (q 64+64, k 64+32, v 64+32, o 64+64)
    assert json.loads((full / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama)
    assert "version of None" not in (full / "README.md").read_text()
    assert "skipped (--no-eval)" in (full / "run_card.md").read_text()

    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("train_config.yaml", "data_fingerprint.json"):
        shutil.copy(full / name, killed / name)
    shutil.copytree(full / "checkpoint-2", killed / "checkpoint-2")
    config = tiny_config(tiny_llama, train_file, killed)
    with pytest.raises(PricerError, match="already holds a run"):
        train(config)
    resumed = train(config, resume=True)
    assert json.loads((resumed / "run_card.json").read_text())["resumed_from"].endswith("checkpoint-2")
    a, b = load_file(full / "adapter_model.safetensors"), load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and len(a) == 2 * 2 * 4  # 2 layers x q/k/v/o x (A, B)
    start = load_file(full / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not (a[k] == start[k]).all() for k in a)  # steps 3-4 changed the weights
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k

    with pytest.raises(PricerError, match="different run"):
        train(tiny_config(tiny_llama, train_file, killed, lora_r=8), resume=True)


def test_bad_input(tiny_llama, train_file, tmp_path):
    from pricer.train.run import train

    no_price = tmp_path / "no_price.jsonl"
    no_price.write_text('{"text": "a red chair"}\n')
    with pytest.raises(PricerError, match="no 'price' column"):
        train(tiny_config(tiny_llama, no_price, tmp_path / "a"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PricerError, match="empty"):
        train(tiny_config(tiny_llama, empty, tmp_path / "b"))
    with pytest.raises(PricerError, match="unknown config key"):
        load_config(None, {"lora_rank": 8})
    with pytest.raises(PricerError, match="lora_r must be > 0"):
        load_config(None, {"lora_r": 0})
    with pytest.raises(PricerError, match="learning_rate must be > 0"):
        load_config(None, {"learning_rate": "-1e-4"})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("lora_r: 32\nbatchsize: 4\n")
    with pytest.raises(PricerError, match="batchsize"):
        load_config(bad_yaml)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a run")
    with pytest.raises(PricerError, match="holds no pricer run"):
        train(tiny_config(tiny_llama, train_file, other))
    with pytest.raises(PricerError, match="nothing to resume"):
        train(tiny_config(tiny_llama, train_file, tmp_path / "new"), resume=True)


def test_cli_print_config_writes_clean_yaml(tmp_path):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text("lora_r: 16\nlearning_rate: 2.0e-4\n")
    shown = assert_ok(pricer("train", "--config", config, "--lr", "3e-4", "--lora-alpha", "8",
                             "--print-config"))
    assert all(line == line.rstrip() for line in shown.stdout.splitlines())  # no padding
    values = yaml.safe_load(shown.stdout)
    assert (values["lora_r"], values["learning_rate"], values["lora_alpha"]) == (16, 3e-4, 8)
    assert values["optim"] == "adamw_torch"  # auto resolved for this CPU
    again = assert_ok(pricer("train", "--config", config, "--learning-rate", "3e-4",
                             "--lora-alpha", "8", "--print-config"))
    assert again.stdout == shown.stdout  # --lr is an alias of --learning-rate
    config.write_text("head: regression\nbalance_prices: true\ngroup_by_length: false\n")
    off = yaml.safe_load(assert_ok(pricer("train", "--config", config, "--no-balance-prices",
                                          "--group-by-length", "--print-config")).stdout)
    assert off["balance_prices"] is False and off["group_by_length"] is True  # a config's yes/no, turned


def test_every_config_field_is_an_option_with_its_default_shown():
    import dataclasses

    from pricer.train.config import TrainConfig

    text = assert_ok(pricer("train", "--help", env={"COLUMNS": "300"})).stdout
    for f in dataclasses.fields(TrainConfig):
        flag = {"results_dir": "--results", "eval": "--eval"}.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in text, flag
    assert "[default: (32)]" in text and "--lora-dropout" in text and "--eval-size" in text


def test_shipped_configs_load_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("reference")
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (32, 64, 0.1)
    assert config.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (config.learning_rate, config.lr_scheduler, config.warmup_ratio) == (1e-4, "cosine", 0.03)
    assert (config.batch_size, config.epochs, config.max_length) == (4, 1.0, 182)
    assert (config.weight_decay, config.max_grad_norm) == (0.001, 0.3)
    assert (config.save_steps, config.save_total_limit, config.logging_steps) == (2000, 10, 50)
    cpu = resolve(config, "cpu")
    assert (cpu.precision, cpu.optim, cpu.gradient_checkpointing) == ("fp32", "adamw_torch", False)
    assert load_config("demo").max_items == 480 and load_config("amazon").max_items == 2000
    head = load_config("amazon-head")
    assert (head.head, head.num_layers, head.lora_layers, head.max_length) == ("regression", 12, 5, 128)
    assert resolve(head, "cpu").eval_predictor == "head"
    second = load_config("amazon-head-2")  # the same model, a second epoch, test-like weights
    assert (second.init_from, second.balance_prices, second.prices_like) == (
        head.out, False, "results/amazon/reference-split-train.jsonl")
    assert all(getattr(second, k) == getattr(head, k) for k in
               ("num_layers", "lora_layers", "lora_r", "head_pooling", "max_length", "holdout"))
    ntl, ce = load_config("amazon-ntl"), load_config("amazon-ce")  # the loss and its twin
    assert (ntl.loss, ce.loss, ntl.max_items, ntl.holdout, ntl.holdout_pool) == ("ntl", "ce", None, 498, 997)
    differ = {k for k, v in ntl.to_dict().items() if ce.to_dict()[k] != v}
    assert differ == {"loss", "out"}
    ntl2 = load_config("amazon-ntl-2")  # its second epoch, test-like weights, as the head's
    assert (ntl2.init_from, ntl2.prices_like, ntl2.learning_rate) == (
        ntl.out, second.prices_like, ntl.learning_rate / 2)
    differ = {k for k, v in ntl.to_dict().items() if ntl2.to_dict()[k] != v}
    assert differ == {"init_from", "prices_like", "learning_rate", "out", "frozen_cache", "max_minutes"}
    resolve(ntl2, "cpu")  # item weights on the generation path are a valid setting
    assert load_config("configs/demo.yaml") == load_config("demo")  # the old spelling
    shown = assert_ok(pricer("train", "--config", "reference", "--print-config")).stdout
    assert "lora_alpha: 64" in shown


def test_batch_tokens_sizes_the_batch_by_the_longest_item(tiny_llama, train_file, tmp_path):
    """--batch-tokens N: batch size = N // the longest item's tokens, recorded in the run."""
    import yaml

    out = tmp_path / "bt"
    result = pricer("train", "--model", str(tiny_llama), "--data", str(train_file), "--out",
                    str(out), "--batch-tokens", "300", "--max-length", "96", "--epochs", "1",
                    "--max-items", "24", "--report-to", "none", "--no-eval")
    assert_ok(result)
    longest = int(result.stdout.split("(longest item ")[1].split()[0])
    assert 60 < longest <= 96
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["batch_size"] == 300 // longest
    card = json.loads((out / "run_card.json").read_text())
    assert card["steps"] == -(-24 // saved["batch_size"])  # one epoch of 24 items


def test_saved_data_set_trains_and_evaluates_into_the_run_card(tiny_llama, tmp_path):
    """`pricer train` on a saved data set: train split to train, test split to evaluate; the
    run card holds the harness's own figures, and the adapter is not the base model."""
    from safetensors.torch import load_file

    from pricer.data.demo import build_demo_catalog

    from pricer.models.load import load_tokenizer

    catalog = build_demo_catalog(tmp_path / "catalog", train_size=16, test_size=6,
                                 tokenizer=load_tokenizer("default"))
    results, out = tmp_path / "results", tmp_path / "run"
    done = assert_ok(pricer("train", "--model", tiny_llama, "--data", catalog, "--out", out,
                            "--max-steps", "2", "--batch-size", "4", "--report-to", "none",
                            "--learning-rate", "1e-2", "--eval-size", "4", "--results", results))
    assert "trainable params: 28,672 || all params:" in done.stdout
    assert "evaluation after training: done" in done.stdout
    card = json.loads((out / "run_card.json").read_text())
    assert card["items"] == 8 and card["truncated"] == 0  # 2 steps x batch 4 of the 16
    assert card["evaluated_by"] == "pricer train" and card["eval_data"] == str(catalog)
    ev = card["evaluation"]
    written = json.loads(Path(ev["file"]).read_text())
    assert Path(ev["file"]).parent == results
    for key in ("n", "error", "rmsle", "hits"):
        assert ev[key] == written[key], key
    assert ev["n"] == 4 and ev["settings"]["adapter"] == str(out)
    assert f"RMSLE {ev['rmsle']:.3f}" in (out / "run_card.md").read_text()
    b = [w for k, w in load_file(out / "adapter_model.safetensors").items() if "lora_B" in k]
    assert b and all(w.abs().max().item() > 0 for w in b)  # LoRA B starts at 0: it was trained


def test_loss_falls_on_a_learnable_task(tiny_llama, tmp_path):
    """Every item costs $7: after a few steps the price tokens are (much) easier to predict."""
    from pricer.train.run import train

    rows = [json.loads(line) for line in AMAZON_TRAIN.read_text().splitlines()[:24]]
    data = tmp_path / "seven.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "price": 7.0}) + "\n" for r in rows))
    out = train(tiny_config(tiny_llama, data, tmp_path / "seven", max_steps=6, save_steps=100,
                            group_by_length=False))
    losses = json.loads((out / "run_card.json").read_text())["losses"]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.2, losses  # a log per step
    assert losses[3:] == sorted(losses[3:], reverse=True), losses  # and falling once warm


def test_qlora_4bit_on_cpu_gets_gradients(tiny_llama, train_file, tmp_path):
    """QLoRA on a CPU: LoRA B starts at zero, so any non-zero B proves gradients flowed."""
    from safetensors.torch import load_file

    from pricer.train.run import train

    out = train(tiny_config(tiny_llama, train_file, tmp_path / "q", precision="4bit",
                            max_steps=2, save_steps=10))
    weights = load_file(out / "adapter_model.safetensors")
    b = [w for k, w in weights.items() if "lora_B" in k]
    assert b and all(w.abs().max().item() > 0 for w in b)
    assert json.loads((out / "run_card.json").read_text())["config"]["precision"] == "4bit"
