"""Bad input to `pricer eval`, `baselines` and `predict`: exit 2 and one line, or a counted drop;
nothing computed and then lost; no code run from a data file (issue 13). All through the CLI."""

import json
import pickle

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items


@pytest.fixture(scope="module")
def items():
    return read_items(AMAZON_TEST)[:5]


def eval_args(tmp_path, *args):
    return ("eval", "--data", AMAZON_TEST, "--size", "5", "--results", tmp_path / "results", *args)


# ---- pricer predict ----
def test_predict_output_checked_before_any_model_work(tmp_path):
    """--output a folder, or under a file: refused before a model is loaded (the model named
    here does not exist, so any model work would fail with another message)."""
    source = tmp_path / "items.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "hose"}) + "\n")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for output, fragment in ((tmp_path, "is a folder"), (a_file / "out.jsonl", "is a file")):
        assert_bad_input(pricer("predict", "--model", tmp_path / "no-model", "--input", source,
                                "--output", output), fragment)
    assert a_file.read_text() == "mine"


# ---- pricer eval ----
def test_eval_guesses_not_utf8(tmp_path, items):
    guesses = tmp_path / "g.csv"
    guesses.write_bytes(b"id,guess\n" + f"{items[0].id},12\n".encode() + b"\xff\xfe,3\n")
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "guesses", "--guesses", guesses)),
                     "g.csv", "utf-8")


def test_eval_guesses_with_duplicate_ids_are_refused(tmp_path, items):
    guesses = tmp_path / "g.csv"
    guesses.write_text(f"id,guess\n{items[0].id},12\n{items[1].id},5\n{items[0].id},900\n")
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "guesses", "--guesses", guesses)),
                     "more than once", items[0].id)


def test_eval_results_an_existing_file(tmp_path):
    mine = tmp_path / "results"
    mine.write_text("my notes")
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "random")), "results", "is a file")
    assert mine.read_text() == "my notes"


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
def test_eval_constant_value_must_be_a_price(tmp_path, value):
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "constant", "--value", value)),
                     "finite price")
    assert not (tmp_path / "results").exists()


def test_eval_truth_above_the_curation_bound_is_counted_not_scored(tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps({"id": "ok", "text": "Hose reel", "price": 50.0}) + "\n"
                    + json.dumps({"id": "huge", "text": "Hose reel", "price": 1e12}) + "\n")
    res = assert_ok(pricer("eval", "--data", data, "--predictor", "constant", "--value", "50",
                           "--json", "--results", tmp_path / "results"))
    result = json.loads(res.stdout)
    assert result["n"] == 1 and result["error"] == 0
    assert [s["id"] for s in result["skipped"]] == ["huge"] and "bound" in result["skipped"][0]["reason"]
    assert "1 skipped" in res.stderr  # the table and summary go to stderr with --json


def test_eval_options_convert_by_their_real_type(tmp_path):
    """--opt prices_like=FILE stays a path (its items' prices are read), prices_like=12,30,45.5
    is a list of prices: never a path cut into characters ("could not convert string to float")."""
    train, like = tmp_path / "train.jsonl", tmp_path / "like.jsonl"
    lines = AMAZON_TRAIN.read_text().splitlines()
    train.write_text("\n".join(lines[:200]) + "\n")
    like.write_text("\n".join(lines[200:250]) + "\n")
    for number, (given, n) in enumerate(((like, 50), ("12,30,45.5", 3))):
        result = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--size", "5", "--results",
                                  tmp_path / f"results{number}", "--predictor", "features-lr",
                                  "--train", train, "--opt", f"prices_like={given}", "--json"))
        scored = json.loads(result.stdout)
        assert scored["predictor"] == "features-lr-shifted", scored
        assert scored["settings"]["prices_like_items"] == n and scored["n"] == 5
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "features-lr", "--train", train,
                                       "--opt", f"prices_like={tmp_path / 'none.jsonl'}")),
                     "none.jsonl")


def test_saved_baseline_that_is_a_pickle_never_runs(tmp_path):
    """A pickle that would create a marker file: refused without unpickling it."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.joblib"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Evil()))
    assert_bad_input(pricer(*eval_args(tmp_path, "--predictor", "baseline", "--path", evil)),
                     "not a saved baseline")
    assert not marker.exists()


# ---- pricer baselines ----
def test_baselines_results_an_existing_file(tmp_path):
    mine = tmp_path / "results"
    mine.write_text("my notes")
    assert_bad_input(pricer("baselines", "--train", AMAZON_TRAIN, "--test", AMAZON_TEST,
                            "--only", "random", "--results", mine), "is a file")
    assert mine.read_text() == "my notes"


@pytest.mark.parametrize("flag", ["--max-items", "--eval-size"])
def test_baselines_negative_sizes_are_refused(tmp_path, flag):
    assert_bad_input(pricer("baselines", "--train", AMAZON_TRAIN, "--test", AMAZON_TEST,
                            "--only", "random", flag, "-1", "--results", tmp_path), flag)


def test_baselines_fit_within_the_curation_price_bounds(tmp_path):
    """Negative, zero and $1e12 train prices are left out (as curation would) and counted."""
    train = tmp_path / "train.jsonl"
    prices = [10.0, 30.0, -5.0, 0.0, 1e12]
    train.write_text("".join(json.dumps({"id": f"t{n}", "text": f"Hose reel {n}", "price": p}) + "\n"
                             for n, p in enumerate(prices)))
    res = assert_ok(pricer("baselines", "--train", train, "--test", AMAZON_TEST, "--only",
                           "constant", "--eval-size", "5", "--results", tmp_path / "r"))
    assert "3 train items left out" in res.stdout
    result = json.loads(next((tmp_path / "r").glob("constant-*.json")).read_text())
    assert result["settings"]["value"] == 20.0  # the mean of 10 and 30 only
    assert result["fit"]["train_items"] == 2
    assert sum(result["fit"]["dropped"].values()) == 3
