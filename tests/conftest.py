"""Shared fixtures: the real data in ../shared/data and a tiny random-weight Llama."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
AMAZON_TEST = DATA / "amazon-pricer" / "test.jsonl"
AMAZON_TRAIN = DATA / "amazon-pricer" / "train.jsonl"
RAW_SAMPLES = DATA / "amazon-raw-sample"
LLAMA_8B_CONFIG = SHARED / "models" / "llama-3.1-8b"


@pytest.fixture(scope="session")
def default_model_dir():
    """The real offline default model (SmolLM2-135M, bf16 safetensors), converted once."""
    from pricer.models.default import default_model_dir as build

    return build()


def make_tiny_llama(path, default_model_dir, layers: int = 2, seed: int = 0):
    """A tiny random-weight Llama (hidden 64, `layers` layers) with SmolLM2's real tokenizer,
    saved to `path` like any Hub model. Fast enough for training tests on a CPU."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, default_model_dir):
    """A tiny random-weight Llama: 2 layers (make_tiny_llama)."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), default_model_dir)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    """The first 12 items of train.jsonl in a file (a test module may define its own)."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:12]) + "\n")
    return path
