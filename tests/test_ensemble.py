"""The ensemble on real items with cheap members: weights, validation error, round trip, CLI."""

import json
import math

import numpy as np
import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.errors import PricerError
from pricer.data.validation import carve, without_slice
from pricer.predict.ensemble import fit_ensemble, fit_weights, parse_member
from pricer.predict.registry import make_predictor


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    train = read_items(AMAZON_TRAIN, split="train")[:700]
    out = tmp_path_factory.mktemp("ens") / "weights.json"
    specs = [parse_member(s) for s in ("constant", "bow-lr", "features-lr")]
    ensemble, found = fit_ensemble(specs, train, out, val_size=200, seed=3)
    return train, out, ensemble, found


def test_carve_is_seeded_and_disjoint():
    items = list(range(50))
    fit, val = carve(items, 10, seed=1)
    assert len(fit) == 40 and len(val) == 10 and set(fit).isdisjoint(val)
    assert carve(items, 10, seed=1) == (fit, val) and carve(items, 10, seed=2)[1] != val
    with pytest.raises(PricerError, match="--val-size"):
        carve(items, 50)


def test_carve_from_a_pool_holds_out_only_pool_items():
    """--val-pool / --holdout-pool N: the slice comes from the first N items (the test-like
    reference split at the start of train.jsonl); the others all stay to fit on."""
    items = list(range(100))
    fit, val = carve(items, 10, seed=1, pool=30)
    assert len(val) == 10 and set(val) <= set(range(30)) and set(fit).isdisjoint(val)
    assert sorted(fit + val) == items and fit[-70:] == list(range(30, 100))
    assert carve(items, 10, seed=1, pool=30) == (fit, val) and carve(items, 10, 2, 30)[1] != val
    assert carve(items, 10, seed=1, pool=0) == carve(items, 10, seed=1)  # 0: as before
    assert without_slice(items, 10, 50, seed=1, pool=30) == fit[:50]
    with pytest.raises(PricerError, match="--val-size"):
        carve(items, 30, pool=30)
    with pytest.raises(PricerError, match="pool"):
        carve(items, 10, pool=101)


def test_ensemble_fitted_on_a_pool_slice(tmp_path):
    """The ensemble's slice from the first 300 train items; its members learn from the rest,
    the same items `without_slice` gives a member trained with --holdout-pool."""
    train = read_items(AMAZON_TRAIN, split="train")[:700]
    specs = [parse_member(s) for s in ("constant", "bow-lr")]
    ensemble, found = fit_ensemble(specs, train, tmp_path / "w.json", val_size=150, seed=3,
                                   val_pool=300)
    fit = without_slice(train, 150, seed=3, pool=300)
    assert found["validation"]["val_pool"] == 300 and found["validation"]["fit_items"] == 550
    assert ensemble.predictors[0].value == pytest.approx(sum(i.price for i in fit) / len(fit))
    _, val = carve(train, 150, seed=3, pool=300)
    first = {i.text for i in train[:300]}
    assert all(i.text in first for i in val)


def test_nnls_recovers_a_known_blend():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(5, 500, 80), rng.uniform(5, 500, 80)
    truth = np.expm1(0.3 * np.log1p(a) + 0.7 * np.log1p(b) + 0.1)
    weights, intercept = fit_weights([list(a), list(b)], list(truth))
    assert weights == pytest.approx([0.3, 0.7], abs=1e-6) and intercept == pytest.approx(0.1, abs=1e-6)


def test_weights_nonnegative_and_blend_beats_every_member_on_validation(built):
    _, _, ensemble, found = built
    assert all(w >= 0 for w in ensemble.weights) and len(ensemble.weights) == 3
    val = found["validation"]
    assert val["items"] == 200 and val["fit_items"] == 500
    # NNLS minimises squared log error: the blend's RMSLE is at most the best member's
    assert val["ensemble"]["rmsle"] <= min(m["rmsle"] for m in val["members"]) + 1e-9


def test_members_never_see_the_validation_slice(built):
    train, _, ensemble, _ = built
    fit, val = carve(train, 200, seed=3)
    constant = ensemble.predictors[0]
    assert constant.value == pytest.approx(sum(i.price for i in fit) / len(fit))
    assert ensemble.predictors[1].train_size == 500


def test_save_load_round_trip(built):
    _, out, ensemble, _ = built
    again = make_predictor("ensemble", path=out)
    prompts = [i.prompt for i in read_items(AMAZON_TEST)[:25]]
    got, expected = again.predict(prompts), ensemble.predict(prompts)
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(math.isfinite(g) and g >= 0 for g in got)
    body = json.loads(out.read_text())
    assert [m["weight"] for m in body["members"]] == pytest.approx(ensemble.weights)
    assert "nnls" in body["method"]


def test_cli_ensemble_then_eval(tmp_path):
    out = tmp_path / "w" / "weights.json"
    res = assert_ok(pricer("ensemble", "--train", AMAZON_TRAIN, "--max-items", "400",
                           "--val-size", "100", "--member", "constant", "--member", "bow-lr",
                           "--out", out))
    assert "intercept" in res.stdout and out.is_file()
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--member", "constant",
                            "--out", out), "--overwrite")
    result = json.loads(assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "ensemble",
                                         "--path", out, "--size", "30", "--json", "--results",
                                         tmp_path / "r")).stdout)
    assert result["n"] == 30 and result["predictor"] == "ensemble"
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--max-items", "50",
                            "--val-size", "50", "--member", "constant", "--out",
                            tmp_path / "x.json"), "--val-size")
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--member", "constant:value",
                            "--out", tmp_path / "y.json"), "key=value")
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--max-items", "50",
                            "--val-size", "10", "--val-pool", "80", "--member", "constant",
                            "--out", tmp_path / "z.json"), "pool")
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--val-pool", "-1", "--member",
                            "constant", "--out", tmp_path / "z.json"), "--val-pool")
    (tmp_path / "bad.json").write_text("{}")
    assert_bad_input(pricer("eval", "--data", AMAZON_TEST, "--predictor", "ensemble", "--path",
                            tmp_path / "bad.json", "--results", tmp_path / "r"), "not an ensemble")


def test_shift_weights_make_the_slice_weigh_like_the_target_prices():
    """--prices-like: importance weights per price band, so a cheap slice's weighted price mix
    is the target's (the real case: train.jsonl's cheap items vs its test-like first 997)."""
    from pricer.data.balance import BANDS, shift_weights

    train = read_items(AMAZON_TRAIN, split="train")
    like = np.array([i.price for i in train[:997]])  # the reference split's items (data README)
    cheap = np.array([i.price for i in train[2000:3000]])
    w = shift_weights(cheap, like)
    assert w.mean() == pytest.approx(1.0) and (w >= 0).all()
    band, target = np.digitize(cheap, BANDS[1:-1]), np.digitize(like, BANDS[1:-1])
    for b in set(band):
        assert w[band == b].sum() / w.sum() == pytest.approx((target == b).mean(), abs=1e-9)
    assert np.average(cheap, weights=w) > 1.5 * cheap.mean()  # weighted like $220 items


def test_cli_ensemble_weighs_the_slice_like_given_prices(tmp_path):
    like = tmp_path / "like.jsonl"
    like.write_text("".join(line + "\n" for line in open(AMAZON_TRAIN).read().splitlines()[:997]))
    out = tmp_path / "w.json"
    shown = assert_ok(pricer("ensemble", "--train", AMAZON_TRAIN, "--max-items", "400",
                             "--val-size", "100", "--member", "constant", "--member", "bow-lr",
                             "--prices-like", like, "--out", out, env={"COLUMNS": "200"}))
    val = json.loads(out.read_text())["validation"]
    assert val["prices_like_items"] == 997
    # the slice's figures are shown as fitted: weighed like the given prices, beside the plain ones
    assert "weighted error $" in shown.stdout and "bow-lr" in shown.stdout
    assert [m["name"] for m in val["members"]] == ["constant", "bow-lr"]
    for s in [*val["members"], val["ensemble"]]:
        assert s["weighted_error"] > 0 and s["weighted_rmsle"] > 0
    assert val["ensemble"]["weighted_rmsle"] <= min(m["weighted_rmsle"] for m in val["members"]) + 1e-9
    assert_bad_input(pricer("ensemble", "--train", AMAZON_TRAIN, "--member", "constant",
                            "--balance-prices", "--prices-like", like, "--out",
                            tmp_path / "z.json"), "choose one")


def test_the_ensemble_prices_one_description_from_the_command_line(built):
    """pricer predict --run ENSEMBLE.json "text": the blend and its members' spread, no traceback
    (the spread has no number mass, which only `expected` reports)."""
    _, out, ensemble, _ = built
    result = assert_ok(pricer("predict", "--run", str(out), "Moen kitchen faucet, pull-down sprayer"))
    price = ensemble.predict(["Moen kitchen faucet, pull-down sprayer"])[0]
    assert f"${price:,.2f}" in result.output and "10-90 %" in result.output
    assert "mass" not in result.output
