"""The offline demo catalog: real diamonds as short listings, deterministic, balanced over price."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pricer.cli import app
from pricer.data import store
from pricer.data.demo import PRICE_BINS, build_demo_catalog, load_diamonds
from pricer.data.items import read_items
from pricer.data.prompts import QUESTION, description


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, tokenizer):
    return build_demo_catalog(tmp_path_factory.mktemp("demo") / "a", train_size=800,
                              test_size=200, tokenizer=tokenizer)


def test_shape_columns_and_report(catalog):
    data = store.load(catalog)
    assert len(data["train"]) == 800 and len(data["test"]) == 200
    assert data["train"].column_names == ["text", "price", "category"]
    report = json.loads((catalog / "report.json").read_text())
    assert report["read"] == 53_940 and report["kept"] == 1000
    assert report["dropped"]["balanced_out"] == 53_940 - 1000
    assert report["read"] == report["kept"] + sum(report["dropped"].values())
    assert set(report["categories"]["train"]) <= {"Fair", "Good", "Very Good", "Premium", "Ideal"}


def test_listings_are_short_and_keep_the_price_facts(catalog, tokenizer):
    frame = load_diamonds()
    known = set(zip(frame["carat"].round(2), frame["price"].astype(float)))
    items = read_items(catalog, "test")
    for item in items:
        text = description(item.prompt)
        title, grading = text.split("\n")
        carat = float(title.split(", ")[1].split()[0])
        assert title == f"Round diamond, {carat:.2f} carat, {item.category} cut"
        assert (carat, item.price) in known  # a real diamond, its real price
        for fact in ("Colour ", "clarity ", "depth ", "table ", " mm"):
            assert fact in grading
        assert 40 <= len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 60
    first = store.load(catalog)["train"][0]
    assert first["text"].startswith(QUESTION)
    assert first["text"].endswith(f"\n\nPrice is ${round(first['price'])}.00")


def test_deterministic_and_seeded(catalog, tmp_path, tokenizer):
    again = build_demo_catalog(tmp_path / "b", train_size=800, test_size=200, tokenizer=tokenizer)
    assert store.load(again)["test"].to_list() == store.load(catalog)["test"].to_list()
    assert store.load(again)["train"].to_list() == store.load(catalog)["train"].to_list()
    other = build_demo_catalog(tmp_path / "c", train_size=800, test_size=200, seed=1,
                               tokenizer=tokenizer)
    assert list(store.load(other)["test"]["price"]) != list(store.load(catalog)["test"]["price"])


def test_balanced_over_price(catalog):
    """Flatter over log-price bins than the raw data (whose bins differ 50-fold)."""
    raw = load_diamonds()["price"].to_numpy(dtype=float)
    edges = np.linspace(np.log(raw.min()), np.log(raw.max()) + 1e-9, PRICE_BINS + 1)
    data = store.load(catalog)
    sample = np.array(list(data["train"]["price"]) + list(data["test"]["price"]))

    def spread(prices):
        counts = np.bincount(np.digitize(np.log(prices), edges) - 1, minlength=PRICE_BINS)
        return counts.std() / counts.mean()

    assert spread(sample) < spread(raw) / 2
    assert np.mean(np.array(list(data["test"]["price"])) > 5000) > 0.25


def test_cli_demo(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["data", "--demo", "--train-size", "100", "--test-size", "20",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "53,940" in result.output and "Ideal" in result.output
    assert len(read_items(out, "train")) == 100 and len(read_items(out, "test")) == 20
