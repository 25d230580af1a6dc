"""Training (issue 5) on the tiny random Llama: loss masks, truncation, checkpoint + resume,
the run card, two processes, bad input."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import AMAZON_TRAIN, ROOT
from pricer.data.prompts import PRICE_PREFIX, completion
from pricer.errors import PricerError
from pricer.train.config import load_config


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
    from trl import SFTTrainer

    from pricer.models.load import load_model, load_tokenizer
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.run import lora_config, sft_config

    config = tiny_config(tiny_llama, train_file, tmp_path / "out", group_by_length=False)
    from pricer.train.config import resolve

    config = resolve(config, "cpu")
    tokenizer = load_tokenizer(config.model)
    items = load_train_items(config.data)
    data = build_dataset(items, tokenizer, config.max_length)
    model, _ = load_model(config.model, precision="fp32", for_training=True)
    trainer = SFTTrainer(model=model, args=sft_config(config, train_sampling_strategy="sequential"),
                         train_dataset=data.dataset, processing_class=tokenizer,
                         peft_config=lora_config(config))
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


def test_resume_reaches_the_same_weights_and_writes_a_run_card(tiny_llama, train_file, tmp_path):
    """Run 4 steps; separately, keep only checkpoint-2 (as if killed at step 3) and resume."""
    from safetensors.torch import load_file

    from pricer.train.run import train

    full = train(tiny_config(tiny_llama, train_file, tmp_path / "full"), show=False)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "train_config.yaml", "data_fingerprint.json", "run_card.md", "run_card.json"):
        assert (full / name).exists(), name
    card = json.loads((full / "run_card.json").read_text())
    assert card["steps"] == 4 and card["items"] == 40 and card["truncated"] == 40
    assert card["final_loss"] > 0 and card["tokens_per_s"] > 0 and card["processes"] == 1
    assert card["base_model"] == str(tiny_llama)
    assert "skipped (--no-eval)" in (full / "run_card.md").read_text()

    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("train_config.yaml", "data_fingerprint.json"):
        shutil.copy(full / name, killed / name)
    shutil.copytree(full / "checkpoint-2", killed / "checkpoint-2")
    config = tiny_config(tiny_llama, train_file, killed)
    with pytest.raises(PricerError, match="already holds a run"):
        train(config, show=False)
    resumed = train(config, resume=True, show=False)
    assert json.loads((resumed / "run_card.json").read_text())["resumed_from"].endswith("checkpoint-2")
    a, b = load_file(full / "adapter_model.safetensors"), load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and len(a) == 2 * 2 * 4  # 2 layers x q/k/v/o x (A, B)
    start = load_file(full / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not (a[k] == start[k]).all() for k in a)  # steps 3-4 changed the weights
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k

    with pytest.raises(PricerError, match="different run"):
        train(tiny_config(tiny_llama, train_file, killed, lora_r=8), resume=True, show=False)


def test_bad_input(tiny_llama, train_file, tmp_path):
    from pricer.train.run import train

    no_price = tmp_path / "no_price.jsonl"
    no_price.write_text('{"text": "a red chair"}\n')
    with pytest.raises(PricerError, match="no 'price' column"):
        train(tiny_config(tiny_llama, no_price, tmp_path / "a"), show=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PricerError, match="empty"):
        train(tiny_config(tiny_llama, empty, tmp_path / "b"), show=False)
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
        train(tiny_config(tiny_llama, train_file, other), show=False)
    with pytest.raises(PricerError, match="nothing to resume"):
        train(tiny_config(tiny_llama, train_file, tmp_path / "new"), resume=True, show=False)


def test_cli_print_config_and_errors(tmp_path):
    pricer = [str(ROOT / ".venv/bin/pricer")]
    config = tmp_path / "c.yaml"
    config.write_text("lora_r: 16\nlearning_rate: 2.0e-4\n")
    shown = subprocess.run(pricer + ["train", "--config", str(config), "--lr", "3e-4",
                                     "--print-config"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "lora_r: 16" in shown.stdout and "learning_rate: 0.0003" in shown.stdout
    assert "optim: adamw_torch" in shown.stdout  # auto resolved for this CPU
    bad = subprocess.run(pricer + ["train", "--set", "lora_r=0", "--print-config"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "lora_r must be > 0" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_reference_config_is_the_reference_recipe():
    config = load_config(ROOT / "configs" / "reference.yaml")
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (32, 64, 0.1)
    assert config.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (config.learning_rate, config.lr_scheduler, config.warmup_ratio) == (1e-4, "cosine", 0.03)
    assert (config.batch_size, config.epochs, config.max_length) == (4, 1.0, 182)
    assert (config.weight_decay, config.max_grad_norm) == (0.001, 0.3)
    assert (config.save_steps, config.save_total_limit, config.logging_steps) == (2000, 10, 50)
    from pricer.train.config import resolve

    cpu = resolve(config, "cpu")
    assert (cpu.precision, cpu.optim, cpu.gradient_checkpointing) == ("fp32", "adamw_torch", False)


def test_two_processes_train_data_parallel(tiny_llama, train_file, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): each step sees 2 x batch items."""
    out = tmp_path / "dp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(ROOT / ".venv/bin/accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / ".venv/bin/pricer"), "train", "--model", str(tiny_llama),
           "--data", str(train_file), "--out", str(out), "--max-steps", "2", "--batch-size", "4",
           "--no-eval", "--report-to", "none", "--set", "max_length=96"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "run_card.json").read_text())
    assert card["processes"] == 2 and card["steps"] == 2
    assert card["epochs"] == pytest.approx(2 * 2 * 4 / 40)  # 2 steps x 2 processes x batch 4
    assert (out / "adapter_model.safetensors").exists()


def test_saved_data_set_trains_and_evaluates_into_the_run_card(tiny_llama, tmp_path):
    """A `pricer data`-style saved data set: train split to train, test split to evaluate."""
    from pricer.data.demo import build_demo_catalog
    from pricer.models.load import load_tokenizer
    from pricer.train.run import train

    catalog = build_demo_catalog(tmp_path / "catalog", train_size=16, test_size=6,
                                 tokenizer=load_tokenizer("default"))
    results = tmp_path / "results"
    config = tiny_config(tiny_llama, catalog, tmp_path / "run", max_steps=2, eval=True,
                         eval_size=4, results_dir=str(results))
    out = train(config, show=False)
    card = json.loads((out / "run_card.json").read_text())
    assert card["items"] == 16 and card["truncated"] == 0
    ev = card["evaluation"]
    assert ev["n"] == 4 and ev["error"] >= 0 and ev["rmsle"] >= 0 and 0 <= ev["hits"] <= 100
    assert card["eval_data"] == str(catalog)
    assert "RMSLE" in (out / "run_card.md").read_text()
    assert list(results.glob("*.json")) and list(results.glob("*.png"))


def test_qlora_4bit_on_cpu_gets_gradients(tiny_llama, train_file, tmp_path):
    """QLoRA on a CPU: LoRA B starts at zero, so any non-zero B proves gradients flowed."""
    from safetensors.torch import load_file

    from pricer.train.run import train

    out = train(tiny_config(tiny_llama, train_file, tmp_path / "q", precision="4bit",
                            max_steps=2, save_steps=10), show=False)
    weights = load_file(out / "adapter_model.safetensors")
    b = [w for k, w in weights.items() if "lora_B" in k]
    assert b and all(w.abs().max().item() > 0 for w in b)
    assert json.loads((out / "run_card.json").read_text())["config"]["precision"] == "4bit"
