"""Charts: the numbers behind them (bands, losses) by hand, and each PNG written by the CLI."""

import json

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.evaluate.charts import band_errors, band_of, run_losses
from pricer.evaluate.harness import evaluate
from pricer.predict.simple import ConstantPredictor


def test_price_bands_by_hand():
    assert [band_of(p) for p in (0.5, 50, 99.99, 100, 999, 1000, 5000)] == [
        "$0-50", "$50-100", "$50-100", "$100-250", "$500-1000", "$1000+", "$1000+"]
    rows = [{"truth": 10, "error": 4}, {"truth": 20, "error": 8}, {"truth": 300, "error": 30}]
    got = {band: (error, n) for band, error, n in band_errors(rows)}
    assert got["$0-50"] == (6, 2) and got["$250-500"] == (30, 1) and got["$1000+"] == (None, 0)
    assert len(got) == 6


def _state(folder, losses):
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": n + 1, "loss": v} for n, v in enumerate(losses)] + [{"train_runtime": 3.0}]}))


def test_run_losses_read_the_newest_checkpoint_then_the_run_card(tmp_path):
    _state(tmp_path / "checkpoint-9", [3.0, 2.0])
    _state(tmp_path / "checkpoint-10", [3.0, 2.0, 1.5])  # newest by step, not by name
    assert run_losses(tmp_path) == [(1.0, 3.0), (2.0, 2.0), (3.0, 1.5)]
    card_only = tmp_path / "card"
    card_only.mkdir()
    (card_only / "run_card.json").write_text(json.dumps({"losses": [2.5, 1.0]}))
    assert run_losses(card_only) == [(1.0, 2.5), (2.0, 1.0)]


def test_cli_chart_loss_and_prices(tmp_path):
    _state(tmp_path / "run" / "checkpoint-4", [2.0, 1.8, 1.1, 0.9])
    res = assert_ok(pricer("chart", "loss", tmp_path / "run"))
    assert (tmp_path / "run" / "loss.png").stat().st_size > 5000 and "loss.png" in res.stdout
    assert_ok(pricer("chart", "prices", AMAZON_TEST, "--train", AMAZON_TRAIN, "--out",
                     tmp_path / "prices.png"))
    assert (tmp_path / "prices.png").stat().st_size > 5000
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "run_card.json").write_text("{}")
    assert_bad_input(pricer("chart", "loss", tmp_path / "empty"), "no training losses")
    assert_bad_input(pricer("chart", "loss", tmp_path / "nowhere"), "no such run folder")


def test_eval_writes_scatter_and_bands(tmp_path):
    items = read_items(AMAZON_TEST)[:40]
    result = evaluate(ConstantPredictor(0), items, results_dir=tmp_path, show=False)
    for key in ("chart", "bands_chart"):  # a $0 guess is drawn on the floor of the log axes
        assert result[key].endswith(".png")
        assert tmp_path.joinpath(result[key].split("/")[-1]).stat().st_size > 5000
    assert json.loads(open(result["file"]).read())["bands_chart"] == result["bands_chart"]


@pytest.mark.parametrize("bad", ["prices", "loss"])
def test_cli_chart_needs_its_argument(bad):
    res = pricer("chart", bad)
    assert res.exit_code == 2
