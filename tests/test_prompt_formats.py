"""Named prompt formats (issue 10, section 6): the 2024 and 2025 prompts pinned on a real item,
the 2025 recipe's configs, and the format travelling from `pricer data` and `pricer train` to
the LLM predictors (through the adapter's train_config.yaml)."""

import json

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN, RAW_SAMPLES
from pricer.data.items import Item
from pricer.models.run import Run
from pricer.data.prompts import (FORMATS, QUESTION, as_test_prompt,
                                 description, format_prompt, prompt_format, train_prompt)
from pricer.data.prompts import test_prompt as make_prompt
from pricer.errors import PricerError

Q2025 = "What does this cost to the nearest dollar?"


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


@pytest.fixture(scope="module")
def item():
    """The first item of the real test file (a bare description: title line + contents)."""
    return json.loads(AMAZON_TEST.read_text().splitlines()[0])


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_the_two_formats_are_named():
    assert set(FORMATS) == {"2024", "2025"}
    assert prompt_format("2024").question == QUESTION == "How much does this cost to the nearest dollar?"
    assert prompt_format("2024").description_tokens is None
    assert (prompt_format("2025").question, prompt_format("2025").description_tokens) == (Q2025, 110)
    with pytest.raises(PricerError, match="unknown prompt format '2023'.*2024, 2025"):
        prompt_format("2023")


def test_both_formats_pinned_on_a_real_item(item, tokenizer):
    text = item["text"]
    assert text.startswith("Moen Belfield Dual-Mount Bath Bathroom Vanity Light Fixture")
    # 2024: the reference's question, the curated text untouched (with or without a tokenizer)
    p2024 = format_prompt(text, "2024", tokenizer)
    assert p2024 == f"How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is $"
    assert p2024 == format_prompt(text) == make_prompt(text) == as_test_prompt(text)
    # 2025: the new question, the description cut to its first 110 tokens
    p2025 = format_prompt(text, "2025", tokenizer)
    head = ("What does this cost to the nearest dollar?\n\nMoen Belfield Dual-Mount Bath Bathroom "
            "Vanity Light Fixture with Frosted Glass, Brushed Nickel\nWilliamsburg-era details")
    assert p2025.startswith(head)
    assert p2025.endswith("multiple finish options add a distinctly personalized touch to the "
                          "traditional styling. WARM AND INVITING Brushed Nickel finish provides a "
                          "lightly brushed warm-grey metallic look PRACTICAL DESIGN Fixtures can be "
                          "mounted with glass globes facing up or down for more design flexibility "
                          "LIGHT AND BRIGHT Uses up to light bulbs\n\nPrice is $")
    cut = description(p2025)
    assert n_tokens(tokenizer, text) > 110 and n_tokens(tokenizer, cut) == 110
    assert text.startswith(cut)
    # without a tokenizer nothing can be counted: the question changes, the text does not
    assert format_prompt(text, "2025") == f"{Q2025}\n\n{text}\n\nPrice is $"


def test_every_2025_description_fits_and_cutting_twice_changes_nothing(tokenizer):
    from pricer.data.prompts import format_prompts

    texts = [json.loads(line)["text"] for line in AMAZON_TEST.read_text().splitlines()[:200]]
    once = format_prompts(texts, "2025", tokenizer)
    assert all(n_tokens(tokenizer, description(p)) <= 110 for p in once)
    assert format_prompts(once, "2025", tokenizer) == once
    assert once == [format_prompt(t, "2025", tokenizer) for t in texts]
    assert format_prompts(texts, "2024", tokenizer) == [make_prompt(t) for t in texts]


@pytest.mark.parametrize("fmt", ["2024", "2025"])
def test_description_round_trips_both_formats(item, fmt):
    text, question = item["text"], prompt_format(fmt).question
    test = make_prompt(text, question)
    train = train_prompt(text, 123.45, question)
    assert train == test + "123.00"
    for prompt in (test, train):
        assert description(prompt) == text
        assert as_test_prompt(prompt) == test  # a prompt keeps its own question
    assert description(text) == text
    other = "2025" if fmt == "2024" else "2024"
    # any format's prompt becomes the other's, the description carried over
    assert format_prompt(train, other) == make_prompt(text, prompt_format(other).question)


@pytest.mark.parametrize("name, epochs, batch, r, alpha, modules", [
    ("reference-2025-lite", 2, 32, 32, 64, ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("reference-2025-full", 3, 256, 256, 512, ["q_proj", "k_proj", "v_proj", "o_proj",
                                               "gate_proj", "up_proj", "down_proj"]),
])
def test_the_2025_configs_are_section_3b(name, epochs, batch, r, alpha, modules):
    from pricer.train.config import CONFIGS, load_config

    config = load_config(name)
    assert name in CONFIGS
    assert (config.model, config.precision) == ("meta-llama/Llama-3.2-3B", "4bit")
    assert (config.prompt_format, config.max_length) == ("2025", 128)
    assert (config.epochs, config.batch_size, config.lora_r, config.lora_alpha) == (epochs, batch, r, alpha)
    assert config.target_modules == modules
    assert (config.lora_dropout, config.learning_rate, config.lr_scheduler) == (0.1, 1e-4, "cosine")
    assert (config.warmup_ratio, config.optim, config.max_grad_norm) == (0.01, "paged_adamw_32bit", 0.3)
    assert load_config("reference").prompt_format == "2024"


def test_print_config_shows_the_2025_recipe():
    shown = assert_ok(pricer("train", "--config", "reference-2025-lite", "--print-config")).stdout
    for line in ("model: meta-llama/Llama-3.2-3B", "prompt_format: '2025'", "max_length: 128",
                 "lora_r: 32", "batch_size: 32", "warmup_ratio: 0.01", "optim: paged_adamw_32bit"):
        assert line in shown, line
    full = assert_ok(pricer("train", "--config", "reference-2025-full", "--print-config")).stdout
    assert "lora_r: 256" in full and "- gate_proj" in full and "epochs: 3.0" in full


def test_a_bad_format_name_is_one_error_line(tmp_path):
    assert_bad_input(pricer("train", "--config", "reference", "--prompt-format", "2026",
                            "--print-config"), "prompt_format must be one of 2024, 2025")
    assert_bad_input(pricer("data", "--input", RAW_SAMPLES / "raw_meta_jsonl_format.jsonl",
                            "--out", tmp_path / "d", "--prompt-format", "2026"),
                     "unknown prompt format '2026'")
    assert not (tmp_path / "d").exists()


def test_a_2025_training_set_has_the_new_question_and_fits_128(tokenizer):
    from pricer.data.items import read_items
    from pricer.train.dataset import build_dataset

    items = read_items(AMAZON_TRAIN, split="train")[:30]
    data = build_dataset(items, tokenizer, 128, prompt_format="2025")
    assert data.n_items == 30
    for row, item in zip(data.dataset, items):
        assert row["prompt"].startswith(Q2025 + "\n\n") and row["prompt"].endswith("\n\nPrice is $")
        assert description(item.prompt).startswith(description(row["prompt"]))
        assert n_tokens(tokenizer, description(row["prompt"])) <= 110
        assert len(tokenizer(row["prompt"] + row["completion"])["input_ids"]) <= 128
    old = build_dataset(items[:3], tokenizer, 182)  # the default is the 2024 format
    assert old.dataset[0]["prompt"].startswith(QUESTION + "\n\n")


def test_pricer_data_writes_2025_prompts(tmp_path, tokenizer):
    from pricer.data import store
    from pricer.data.items import read_items

    out = tmp_path / "d2025"
    assert_ok(pricer("data", "--input", RAW_SAMPLES / "raw_meta_jsonl_format.jsonl", "--out", out,
                     "--train-size", "2", "--test-size", "1", "--prompt-format", "2025"))
    report = json.loads((out / "report.json").read_text())
    assert report["prompt_format"] == "2025" and report["settings"]["prompt_format"] == "2025"
    data = store.load(out)
    rows = data["train"].to_list() + data["test"].to_list()
    assert len(rows) == 3
    for row in data["train"]:
        assert row["text"].startswith(Q2025 + "\n\n")
        assert row["text"].endswith(f"\n\nPrice is ${round(row['price'])}.00")
        assert n_tokens(tokenizer, description(row["text"])) <= 110
    assert data["test"][0]["text"].startswith(Q2025) and data["test"][0]["text"].endswith("Price is $")
    # read back for training and evaluation: the items are the descriptions (cut to 110 tokens);
    # a run prompts them in its own format (pricer.predict.prompting, train/dataset.py)
    assert [i.text for i in read_items(out, split="train")] == \
        [description(row["text"]) for row in data["train"]]


def _adapter(base, folder, train_config: str | None):
    """A LoRA adapter on `base` saved to `folder`, with the given train_config.yaml text."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(folder)
    if train_config is not None:
        (folder / "train_config.yaml").write_text(train_config)
    return folder


def test_an_adapter_trained_on_2025_prompts_gets_2025_prompts(tiny_llama, tmp_path):
    from pricer.predict.registry import make_predictor

    new = _adapter(tiny_llama, tmp_path / "new", "model: x\nprompt_format: '2025'\n")
    old = _adapter(tiny_llama, tmp_path / "old", "model: x\nmax_length: 182\n")
    assert Run(new).prompt_format == "2025" and Run(old).prompt_format is None  # None: 2024
    assert Run(tmp_path).prompt_format is None  # no train_config.yaml
    (new / "checkpoint-2").mkdir()
    assert Run(new / "checkpoint-2").prompt_format == "2025"  # a checkpoint: its run's

    items = [Item(str(n), as_test_prompt(json.loads(line)["text"]), None, None)
             for n, line in enumerate(AMAZON_TEST.read_text().splitlines()[:2])]
    predictor = make_predictor("greedy", model=str(tiny_llama), adapter=str(new),
                               precision="fp32", device="cpu", max_new_tokens=2)
    sent = []
    formatted = predictor.formatted
    predictor.formatted = lambda items: (lambda out: sent.extend(out) or out)(formatted(items))
    details = predictor.predict_details([i.prompt for i in items])
    assert len(details) == 2 and predictor.settings()["prompt_format"] == "2025"
    assert len(sent) == 2 and all(p.startswith(Q2025 + "\n\n") for p in sent)
    tokenizer = predictor.tokenizer
    assert all(n_tokens(tokenizer, description(p)) <= 110 for p in sent)
    # an explicit option wins over the adapter's format; the 2024 adapter sends 2024 prompts
    forced = make_predictor("greedy", model=str(tiny_llama), adapter=str(new), precision="fp32",
                            device="cpu", prompt_format="2024")
    assert forced.formatted([items[0].prompt]) == [items[0].prompt]
    plain = make_predictor("greedy", model=str(tiny_llama), adapter=str(old), precision="fp32",
                           device="cpu")
    assert plain.prompt_format == "2024" and plain.formatted([items[0].prompt]) == [items[0].prompt]
    bad = _adapter(tiny_llama, tmp_path / "bad", "prompt_format: '1999'\n")
    with pytest.raises(PricerError, match="unknown prompt format '1999'"):
        make_predictor("greedy", model=str(tiny_llama), adapter=str(bad), device="cpu")


def test_eval_option_prompt_format_is_checked(tiny_llama, tmp_path):
    data = tmp_path / "t.jsonl"
    data.write_text(AMAZON_TEST.read_text().splitlines()[0] + "\n")
    assert_bad_input(pricer("eval", "--data", data, "--predictor", "greedy", "--model", tiny_llama,
                            "--opt", "prompt_format=2030", "--results", tmp_path),
                     "unknown prompt format '2030'")


def test_a_training_run_records_its_format_for_the_predictors(tiny_llama, tmp_path):
    """One step of `pricer train --prompt-format 2025`: the run's train_config.yaml says 2025,
    which is what the LLM predictors read from the adapter folder."""
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:4]) + "\n")
    out = tmp_path / "run"
    assert_ok(pricer("train", "--model", tiny_llama, "--data", data, "--out", out, "--max-steps",
                     "1", "--batch-size", "2", "--no-eval", "--report-to", "none",
                     "--prompt-format", "2025", "--max-length", "128"))
    assert "prompt_format: '2025'" in (out / "train_config.yaml").read_text()
    assert Run(out).prompt_format == "2025"


def test_a_run_written_before_prompt_formats_still_resumes(tmp_path):
    """An older run's train_config.yaml has no prompt_format: it was a 2024 run, so resuming
    it with the default is the same run, and with 2025 a different one."""
    from pricer.train.config import load_config
    from pricer.models.run import CONFIG as CONFIG_FILE
    from pricer.models.run import DATA as FINGERPRINT_FILE
    from pricer.train.run import resume_point

    config = load_config(None, {"out": str(tmp_path), "data": "x.jsonl"})
    old = "\n".join(line for line in config.to_yaml().splitlines()
                    if not line.startswith("prompt_format"))
    (tmp_path / CONFIG_FILE).write_text(old + "\n")
    (tmp_path / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": "abc"}))
    with pytest.raises(PricerError, match="no complete checkpoint"):  # past the same-run check
        resume_point(config, "abc")
    with pytest.raises(PricerError, match=r"different run \(prompt_format differ\)"):
        resume_point(load_config(None, {"out": str(tmp_path), "data": "x.jsonl",
                                        "prompt_format": "2025"}), "abc")
