"""pricer export: merged safetensors equal the adapter model; the model card; bad input.
GGUF files (llama.cpp's converter and quantizer) and the Modelfile: tests/test_gguf_families.py."""

import json

import pytest
import torch

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST

N_ITEMS = 6


@pytest.fixture(scope="module")
def prompts():
    from pricer.data.items import read_items

    return [item.prompt for item in read_items(AMAZON_TEST)[:N_ITEMS]]


@pytest.fixture(scope="module")
def adapter(tiny_llama, tmp_path_factory):
    """A LoRA adapter on tiny_llama with random non-zero A and B (so merging changes weights)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    lora = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    path = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, lora).save_pretrained(path)
    return path


def logits(model, tokenizer, prompts):
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        return model(**batch).logits.float()


def prices(name, prompts, **options):
    from pricer.predict.registry import make_predictor

    return make_predictor(name, precision="fp32", device="cpu", **options).predict(prompts)


def test_merge_gives_the_adapter_model(tiny_llama, adapter, prompts, tmp_path):
    from transformers import AutoModelForCausalLM

    from pricer.models.load import load_model

    out = tmp_path / "merged"
    result = assert_ok(pricer("export", "--model", tiny_llama, "--adapter", adapter, "--merge",
                              "--dtype", "fp32", "--out", out))
    assert "exported" in result.stdout
    merged = AutoModelForCausalLM.from_pretrained(out)  # plain transformers, no peft, no pricer
    assert not hasattr(merged, "peft_config")
    with_adapter, tokenizer = load_model(str(tiny_llama), adapter=str(adapter), precision="fp32",
                                         device="cpu")
    base, _ = load_model(str(tiny_llama), precision="fp32", device="cpu")
    expected = logits(with_adapter, tokenizer, prompts)
    # tolerance: fp32 rounding of W + BA against W x + B(A x)
    torch.testing.assert_close(logits(merged, tokenizer, prompts), expected, atol=1e-4, rtol=1e-4)
    assert (logits(base, tokenizer, prompts) - expected).abs().max() > 1e-2  # the adapter mattered
    # greedy text of a random model is mostly no number (None); both must read the same
    assert prices("greedy", prompts, model=str(out)) == prices(
        "greedy", prompts, model=str(tiny_llama), adapter=str(adapter))
    spread = prices("expected", prompts, model=str(out))
    assert all(p is not None for p in spread)
    assert spread == pytest.approx(
        prices("expected", prompts, model=str(tiny_llama), adapter=str(adapter)), rel=1e-4)
    card = (out / "README.md").read_text()
    assert "No run card" in card and "model.safetensors" in card
    assert "How much does this cost to the nearest dollar?" in card  # no run card: 2024


def test_4bit_adapter_is_merged_into_16_bit_with_a_caveat(tiny_llama, adapter, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for f in adapter.iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    (run / "run_card.json").write_text(json.dumps({
        "base_model": str(tiny_llama), "data": "train.jsonl", "data_fingerprint": "abc123",
        "items": 400, "steps": 100, "epochs": 1.0, "final_loss": 1.25, "train_seconds": 60,
        "device": "cuda", "config": {"precision": "4bit", "lora_r": 8, "lora_alpha": 16,
                                     "prompt_format": "2025",
                                     "target_modules": ["q_proj"], "learning_rate": 1e-4},
        "evaluation": {"predictor": "greedy", "n": 250, "error": 55.5, "rmsle": 0.61, "hits": 48.0},
        "eval_data": "test.jsonl"}))
    out = tmp_path / "out"
    result = assert_ok(pricer("export", "--model", tiny_llama, "--adapter", run, "--merge",
                              "--out", out))
    assert "caveat" in result.stderr and "4bit" in result.stderr
    card = (out / "README.md").read_text()
    assert "## Caveat" in card and "abc123" in card and "$55.50" in card and "LoRA r=8" in card
    # the prompt it was trained with: the 2025 question, not the 2024 one
    assert "What does this cost to the nearest dollar?" in card and "How much" not in card
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_bad_input(tiny_llama, tmp_path):
    assert_bad_input(pricer("export", "--model", tiny_llama, "--out", tmp_path / "a"), "--merge")
    assert_bad_input(pricer("export", "--model", tiny_llama, "--gguf", "q4_k", "--out", tmp_path / "b"),
                     "q4_k")
    assert_bad_input(pricer("export", "--model", tiny_llama, "--merge", "--dtype", "int3",
                            "--out", tmp_path / "c"), "int3")
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert_bad_input(pricer("export", "--model", tiny_llama, "--merge", "--out", keep), "--overwrite")
    assert_bad_input(pricer("export", "--model", tiny_llama, "--merge", "--out", keep, "--overwrite"),
                     "not a pricer export")
    assert (keep / "notes.txt").read_text() == "mine"
    assert_bad_input(pricer("export", "--model", tmp_path / "nothing", "--merge", "--out", tmp_path / "d"),
                     "nothing")

