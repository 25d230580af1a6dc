"""Classical baselines on a slice of the real data: fit, save, reload, evaluate."""

import json
from collections import OrderedDict

import numpy as np
import pytest

from clirun import assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.data.prompts import description
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate
from pricer.predict.baselines import Baseline, features_of, hand_features, load_baseline
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


def fit(kind, items, **options):
    return Baseline(kind, **options).fit([i.prompt for i in items], [i.price for i in items])


def test_features_lr_is_the_reference_regression(train, test):
    """features-lr = linear regression on the 4 hand features, missing values filled with the
    TRAIN means (computed here by hand), clipped at 0."""
    from sklearn.linear_model import LinearRegression

    x = features_of([description(i.prompt) for i in train])
    means = np.nanmean(x, axis=0)
    by_hand = LinearRegression().fit(np.where(np.isnan(x), means, x), [i.price for i in train])
    xt = features_of([description(i.prompt) for i in test])
    expected = np.maximum(by_hand.predict(np.where(np.isnan(xt), means, xt)), 0)
    got = fit("features-lr", train).predict([i.prompt for i in test])
    assert got == pytest.approx(list(expected), rel=1e-9)
    assert min(got) == 0.0 or min(expected) > 0  # the clip is the reference's


def test_refit_starts_from_scratch(train, test):
    """A refit learns the new split only (the old hand-written imputer kept the first fill)."""
    prompts = [i.prompt for i in test]
    twice = fit("features-lr", train[300:]).fit([i.prompt for i in train[:300]],
                                                 [i.price for i in train[:300]])
    assert twice.predict(prompts) == fit("features-lr", train[:300]).predict(prompts)
    assert twice.settings()["train_size"] == 300


@pytest.mark.parametrize("kind", ["features-lr", "bow-lr"])
def test_fit_save_reload(kind, train, test, tmp_path):
    baseline = fit(kind, train)
    guesses = baseline.predict([i.prompt for i in test])
    assert len(set(guesses)) > 10  # it uses the text, not one constant
    path = baseline.save(tmp_path / f"{kind}.skops")
    again = make_predictor("baseline", path=path)
    assert not again.needs_fit and again.name == kind
    assert again.predict([i.prompt for i in test]) == guesses  # exactly the same model
    assert again.settings() == {"kind": kind, "seed": 42, "train_size": 600,
                                "balance_prices": False, "prices_like_items": 0}


def test_balanced_baselines_weight_every_price_band_the_same(train, test, tmp_path):
    """--balance-prices: the learnt baselines get band weights, so on a train split where cheap
    items dominate they guess higher for expensive items; the setting survives save/reload."""
    from pricer.data.balance import band_weights

    prompts = [i.prompt for i in test]
    plain, balanced = fit("bow-lr", train), make_predictor("bow-lr", balance_prices=True)
    balanced.fit([i.prompt for i in train], [i.price for i in train])
    assert balanced.name == "bow-lr-balanced" and balanced.settings()["balance_prices"]
    assert balanced.predict(prompts) != plain.predict(prompts)
    weights = band_weights([i.price for i in train])
    assert max(weights) > 2 * min(weights)  # the train split is unbalanced, so the weights bite
    again = make_predictor("baseline", path=balanced.save(tmp_path / "b.skops"))
    assert again.name == "bow-lr-balanced" and again.predict(prompts) == balanced.predict(prompts)


@pytest.mark.parametrize("kind", ["features-lr", "dnn"])
def test_prices_like_weighs_train_items_towards_the_test_like_price_mix(kind, test, tmp_path):
    """--prices-like: the learnt baselines weigh train items so that their price bands count like
    another sample's (here the test items' prices: a cheap train split then guesses higher);
    named KIND-shifted, and the setting survives save/reload."""
    import numpy as np

    train = read_items(AMAZON_TRAIN, split="train")[2000:2600]  # past the test-like 997: cheap
    assert np.mean([i.price for i in train]) < 0.6 * np.mean([i.price for i in test])
    prompts = [i.prompt for i in test]
    like = [i.price for i in test]
    options = {"epochs": 6, "width": 128, "blocks": 2} if kind == "dnn" else {}
    plain = make_predictor(kind, **options)
    shifted = make_predictor(kind, prices_like=like, **options)
    for predictor in (plain, shifted):
        predictor.fit([i.prompt for i in train], [i.price for i in train])
    assert shifted.name == f"{kind}-shifted"
    assert np.mean(shifted.predict(prompts)) > 1.2 * np.mean(plain.predict(prompts))
    suffix = ".safetensors" if kind == "dnn" else ".skops"
    again = make_predictor("baseline", path=shifted.save(tmp_path / f"s{suffix}"))
    assert again.name == f"{kind}-shifted" and again.predict(prompts) == shifted.predict(prompts)


def test_saved_pickle_is_refused_without_running_it(tmp_path):
    """A pickle/joblib file that would run code is refused before anything is unpickled."""
    import joblib

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    joblib.dump(Evil(), tmp_path / "evil.joblib")
    with pytest.raises(PricerError, match="not a saved baseline"):
        load_baseline(tmp_path / "evil.joblib")
    assert not marker.exists()


def test_bag_of_words_learns_on_train(train):
    """On its own train items the bag of words beats the train mean by a wide margin."""
    baseline = fit("bow-lr", train)
    mean = sum(i.price for i in train) / len(train)
    bow = evaluate(baseline, train, size=600, show=False)["error"]
    const = evaluate(make_predictor("constant", value=mean), train, size=600, show=False)["error"]
    assert bow < 0.8 * const


def test_embedding_baselines_use_the_description(train, test, tmp_path):
    from pricer.predict.baselines import embed

    few = train[:24]  # embedding is slow on 2 shared cores: a few dozen texts only
    prompts = [i.prompt for i in test[:6]]
    for kind in ("embed-lr", "embed-svr", "embed-rf"):
        baseline = fit(kind, few)
        guesses = baseline.predict(prompts)
        assert len(set(guesses)) > 1
        # the question boilerplate is not what it sees: bare descriptions give the same guesses
        assert baseline.predict([description(p) for p in prompts]) == pytest.approx(guesses)
        reloaded = load_baseline(baseline.save(tmp_path / f"{kind}.skops"))
        assert reloaded.predict(prompts) == pytest.approx(guesses, rel=1e-5)
    vectors = embed([description(i.prompt) for i in test[:3]])
    assert vectors.shape == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1, rel=1e-3)  # MiniLM normalises
    assert not np.allclose(vectors[0], vectors[1])


def test_bad_baseline_input(tmp_path):
    with pytest.raises(PricerError, match="unknown baseline"):
        Baseline("nope")
    with pytest.raises(PricerError, match="not fitted"):
        Baseline("bow-lr").predict(["x"])
    junk = tmp_path / "junk.skops"
    junk.write_text("not a model")
    with pytest.raises(PricerError, match="not a saved baseline"):
        load_baseline(junk)


def test_baselines_command_fits_saves_evaluates(tmp_path):
    assert_ok(pricer("baselines", "--train", AMAZON_TRAIN, "--test", AMAZON_TEST, "--max-items",
                     "300", "--eval-size", "40", "--only", "random,constant,features-lr,bow-lr",
                     "--results", tmp_path))
    results = {json.loads(p.read_text())["predictor"]: json.loads(p.read_text())
               for p in tmp_path.glob("*.json")}
    assert set(results) == {"random", "constant", "features-lr", "bow-lr"}
    assert all(r["n"] == 40 for r in results.values())
    assert results["bow-lr"]["fit"]["train_items"] == 300
    prices = [i.price for i in read_items(AMAZON_TRAIN, split="train")[:300]]
    assert results["constant"]["settings"]["value"] == pytest.approx(sum(prices) / 300)
    # a saved model, reloaded through `pricer eval`, gives the same figures
    res = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "baseline", "--path",
                           tmp_path / "models" / "bow-lr.skops", "--size", "40", "--json",
                           "--results", tmp_path / "again"))
    assert json.loads(res.stdout)["error"] == pytest.approx(results["bow-lr"]["error"])
    assert (tmp_path / "baselines.png").exists()


def test_embeddings_are_cached_on_disk_per_text_so_a_subset_reuses_them(tmp_path, monkeypatch):
    """A split's embeddings, saved once, serve any later list of the same texts (an ensemble's
    fit slice, a rerun in a new process) without running the encoder again."""
    from pricer.predict import baselines as b

    monkeypatch.setenv("PRICER_CACHE", str(tmp_path))
    texts = [f"Bosch drill model {i}, 18 V, two batteries" for i in range(6)]
    first = b.embed(texts, cache_from=3)
    assert list((tmp_path / "embeddings").glob("minilm-*.npz"))
    monkeypatch.setattr(b, "_SEEN", OrderedDict())  # a new process
    monkeypatch.setattr(b, "encoder", lambda: (_ for _ in ()).throw(AssertionError("encoded again")))
    again = b.embed(texts[3:] + texts[:1], cache_from=3)
    assert np.array_equal(again, first[[3, 4, 5, 0]])


def test_a_server_embedding_every_request_keeps_a_bounded_cache(monkeypatch):
    """The per-process cache keeps the SEEN_LIMIT most recently used texts; vectors stay right."""
    from pricer.predict import baselines as b

    monkeypatch.setattr(b, "_SEEN", OrderedDict())
    monkeypatch.setattr(b, "SEEN_LIMIT", 4)
    texts = [f"USB-C cable number {i}, 2 m" for i in range(7)]
    alone = [b.embed([t], cache_from=100)[0] for t in texts]  # one request at a time
    assert list(b._SEEN) == texts[-4:]
    together = b.embed(texts, cache_from=100)  # more than the limit in one call: all kept for it
    assert np.allclose(together, np.stack(alone), atol=1e-5)
    assert len(b._SEEN) == 7
    b.embed(texts[:1], cache_from=100)
    assert len(b._SEEN) == 4 and list(b._SEEN)[-1] == texts[0]
