"""Classical baselines on a slice of the real data: fit, save, reload, evaluate."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.cli import app
from pricer.data.items import read_items
from pricer.data.prompts import description
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate
from pricer.predict.baselines import Baseline, hand_features, load_baseline
from pricer.predict.registry import make_predictor


@pytest.fixture(scope="module")
def train():
    return read_items(AMAZON_TRAIN, split="train")[:600]


@pytest.fixture(scope="module")
def test():
    return read_items(AMAZON_TEST)[:60]


def test_hand_features_read_the_text():
    text = ("Acme Dell laptop stand\nSturdy. Weight 14.9 ounces, Rank Tools & Home Improvement "
            "Crimpers 1,422, Available 2018")
    weight, rank, length, brand = hand_features(text)
    assert weight == pytest.approx(14.9 / 16) and rank == 1422
    assert length == len(text) and brand == 1.0
    assert np.isnan(hand_features("no facts here")[:2]).all()


@pytest.mark.parametrize("kind", ["features-lr", "bow-lr"])
def test_fit_save_reload(kind, train, test, tmp_path):
    baseline = Baseline(kind).fit(train)
    guesses = baseline.predict([i.prompt for i in test])
    assert len(guesses) == 60 and all(g >= 0 and np.isfinite(g) for g in guesses)
    assert len(set(guesses)) > 10  # it uses the text, not one constant
    path = baseline.save(tmp_path / f"{kind}.joblib")
    again = make_predictor("baseline", path=path)
    assert again.predict([i.prompt for i in test]) == guesses
    assert again.settings() == {"kind": kind, "seed": 42, "train_size": 600}


def test_bag_of_words_learns_on_train(train):
    """On its own train items the bag of words beats the train mean by a wide margin."""
    baseline = Baseline("bow-lr").fit(train)
    mean = sum(i.price for i in train) / len(train)
    bow = evaluate(baseline, train, size=600, show=False)["error"]
    const = evaluate(make_predictor("constant", value=mean), train, size=600, show=False)["error"]
    assert bow < 0.8 * const


def test_embedding_baselines_use_the_description(train, test, tmp_path, monkeypatch):
    import pricer.predict.baselines as b

    seen = []
    real = b.embed
    monkeypatch.setattr(b, "embed", lambda texts, progress=None: seen.extend(texts) or real(texts, progress))
    few = train[:24]  # embedding is slow on 2 shared cores: a few dozen texts only
    for kind in ("embed-lr", "embed-rf"):
        baseline = Baseline(kind).fit(few)
        guesses = baseline.predict([i.prompt for i in test[:6]])
        assert all(g >= 0 for g in guesses) and len(set(guesses)) > 1
        reloaded = load_baseline(baseline.save(tmp_path / f"{kind}.joblib"))
        assert reloaded.predict([i.prompt for i in test[:6]]) == pytest.approx(guesses, rel=1e-5)
    assert seen[0] == description(few[0].prompt) and "nearest dollar" not in seen[0]
    vectors = real([description(i.prompt) for i in test[:3]])
    assert vectors.shape == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1, rel=1e-3)  # MiniLM normalises
    assert not np.allclose(vectors[0], vectors[1])


def test_bad_baseline_input(tmp_path):
    with pytest.raises(PricerError, match="unknown baseline"):
        Baseline("nope")
    with pytest.raises(PricerError, match="not fitted"):
        Baseline("bow-lr").predict(["x"])
    junk = tmp_path / "junk.joblib"
    junk.write_text("not a model")
    with pytest.raises(PricerError, match="not a saved baseline"):
        load_baseline(junk)


def test_baselines_command_fits_saves_evaluates(tmp_path):
    res = CliRunner().invoke(app, ["baselines", "--train", str(AMAZON_TRAIN), "--test",
                                   str(AMAZON_TEST), "--train-size", "300", "--size", "40",
                                   "--only", "random,constant,features-lr,bow-lr",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    results = {json.loads(p.read_text())["predictor"]: json.loads(p.read_text())
               for p in tmp_path.glob("*.json")}
    assert set(results) == {"random", "constant", "features-lr", "bow-lr"}
    assert all(r["n"] == 40 for r in results.values())
    # a saved model, reloaded through `pricer eval`, gives the same figures
    res = CliRunner().invoke(app, ["eval", "--data", str(AMAZON_TEST), "--predictor", "baseline",
                                   "--path", str(tmp_path / "models" / "bow-lr.joblib"),
                                   "--size", "40", "--json", "--results", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["error"] == pytest.approx(results["bow-lr"]["error"])
    assert (tmp_path / "baselines.png").exists()
