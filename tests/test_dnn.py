"""`dnn` on a few hundred real items: it learns, guesses sane prices, saves and reloads exactly."""

import json

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.errors import PricerError
from pricer.predict.dnn import DnnPredictor, load_dnn
from pricer.predict.registry import make_predictor

SMALL = dict(blocks=2, width=64, epochs=6, patience=6, train_batch=32)  # small and quick; the same code path


@pytest.fixture(scope="module")
def fitted():
    train = read_items(AMAZON_TRAIN, split="train")[:400]
    return DnnPredictor(**SMALL).fit([i.prompt for i in train], [i.price for i in train])


def test_loss_falls_and_guesses_are_finite_positive(fitted):
    losses = [h["train_loss"] for h in fitted.history]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    assert fitted.train_size == 360  # 10 % of the 400 train items held back for early stopping
    guesses = fitted.predict([i.prompt for i in read_items(AMAZON_TEST)[:50]])
    assert len(guesses) == 50 and all(0 < g < 1e5 for g in guesses)
    assert len(set(round(g, 4) for g in guesses)) > 10  # it reads the text


def test_same_seed_same_model():
    train = read_items(AMAZON_TRAIN, split="train")[:120]
    args = ([i.prompt for i in train], [i.price for i in train])
    one = DnnPredictor(**SMALL | {"epochs": 2}).fit(*args)
    two = DnnPredictor(**SMALL | {"epochs": 2}).fit(*args)
    prompts = [i.prompt for i in read_items(AMAZON_TEST)[:10]]
    assert one.predict(prompts) == two.predict(prompts)


def test_save_and_reload_give_identical_guesses(fitted, tmp_path):
    path = fitted.save(tmp_path / "dnn.safetensors")
    again = make_predictor("baseline", path=path)  # a saved dnn loads like any saved baseline
    prompts = [i.prompt for i in read_items(AMAZON_TEST)[:30]]
    assert again.predict(prompts) == fitted.predict(prompts)
    assert again.settings() == fitted.settings()
    (tmp_path / "fake.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(PricerError, match="not a saved dnn"):
        load_dnn(tmp_path / "fake.safetensors")


def test_bad_options_are_refused():
    with pytest.raises(PricerError, match="val_fraction"):
        make_predictor("dnn", val_fraction=1.5)
    with pytest.raises(PricerError, match="at least 10"):
        DnnPredictor().fit(["a", "b"], [1.0, 2.0])


def test_cli_baselines_fits_and_saves_dnn(tmp_path):
    res = assert_ok(pricer("baselines", "--train", AMAZON_TRAIN, "--test", AMAZON_TEST,
                           "--max-items", "200", "--eval-size", "20", "--only", "dnn",
                           "--results", tmp_path))
    assert "dnn" in res.stdout
    saved = tmp_path / "models" / "dnn.safetensors"
    assert saved.is_file()
    result = json.loads(next(tmp_path.glob("dnn-*.json")).read_text())
    assert result["n"] == 20 and result["settings"]["blocks"] == 4
    again = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "baseline", "--path",
                             saved, "--size", "20", "--json", "--results", tmp_path / "again"))
    assert json.loads(again.stdout)["error"] == pytest.approx(result["error"])
    assert_bad_input(pricer("eval", "--data", AMAZON_TEST, "--predictor", "dnn", "--opt",
                            "width=0", "--train", AMAZON_TRAIN, "--results", tmp_path), "width")
