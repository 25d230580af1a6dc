"""The harness on real data: the reference's procedure, bad input, result files, CLI contract."""

import io
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from conftest import AMAZON_TEST, AMAZON_TRAIN, ROOT
from pricer.cli import app
from pricer.data.items import Item, read_items
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate, fingerprint
from pricer.evaluate.leaderboard import PUBLISHED, read_results, rows
from pricer.predict.registry import make_predictor
from pricer.predict.simple import ConstantPredictor, GuessesPredictor, RandomPredictor

PRICER = str(Path(sys.executable).parent / "pricer")


@pytest.fixture(scope="module")
def test_items():
    return read_items(AMAZON_TEST)


def reference_tester(guesses, items):
    """The reference's Tester loop written out plainly, to compare with."""
    errors, sles, hits = [], [], 0
    for guess, item in zip(guesses, items):
        error = abs(guess - item.price)
        errors.append(error)
        sles.append((math.log(item.price + 1) - math.log(guess + 1)) ** 2)
        hits += error < 40 or error / item.price < 0.2
    size = len(items)
    return sum(errors) / size, math.sqrt(sum(sles) / size), hits / size * 100


def test_random_reproduces_reference_procedure(test_items):
    random.seed(42)  # the reference: seed the module, then one randrange(1, 1000) per item
    expected_guesses = [random.randrange(1, 1000) for _ in test_items[:250]]
    result = evaluate(RandomPredictor(42), test_items, size=250, show=False)
    assert [r["guess"] for r in result["items"]] == expected_guesses
    error, rmsle, hits = reference_tester(expected_guesses, test_items[:250])
    assert (result["error"], result["rmsle"], result["hits"], result["n"]) == (error, rmsle, hits, 250)
    assert result["data"]["reference"] is True


def test_constant_matches_reference_formulas(test_items):
    result = evaluate(make_predictor("constant", value=220.46), test_items, show=False)
    error, rmsle, hits = reference_tester([220.46] * 250, test_items[:250])
    assert result["error"] == pytest.approx(error, abs=1e-9)
    assert result["rmsle"] == pytest.approx(rmsle, abs=1e-12)
    assert result["hits"] == hits and result["settings"] == {"value": 220.46}


def test_constant_on_2000_items_is_fast(test_items):
    items = (test_items * 3)[:2000]
    start = time.perf_counter()
    result = evaluate(ConstantPredictor(200), items, size=2000, show=False)
    assert time.perf_counter() - start < 0.5
    assert result["n"] == 2000
    out = io.StringIO()
    start = time.perf_counter()
    evaluate(ConstantPredictor(200), items, size=2000, console=Console(file=out))
    assert time.perf_counter() - start < 2  # ~0.1 s idle; generous for 2 shared cores
    assert len(out.getvalue().splitlines()) == 2002  # header + one line per item + summary


def test_bad_items_and_failing_predictor(tmp_path, test_items):
    items = [Item("a", test_items[0].prompt, 100.0), Item("zero", test_items[1].prompt, 0.0),
             Item("neg", test_items[2].prompt, -3.0), Item("none", test_items[3].prompt, None),
             Item("boom", test_items[4].prompt + " BOOM", 50.0), Item("b", test_items[5].prompt, 80.0)]

    class Flaky:
        name, batch_size, calls = "flaky", 8, 0

        def settings(self):
            return {}

        def predict(self, prompts):
            self.calls += 1
            if any("BOOM" in p for p in prompts):
                raise RuntimeError("cannot price this one")
            return [90.0 for _ in prompts]

    out = io.StringIO()
    result = evaluate(Flaky(), items, results_dir=tmp_path, console=Console(file=out, width=200))
    shown = out.getvalue()
    assert "skipped: price 0.0 <= 0" in shown and "none:None" in shown
    assert "flaky Error=$23.33 RMSLE=" in shown and "1 raised" in shown and "3 skipped" in shown
    assert result["n"] == 3  # a, boom (a miss), b
    assert {s["id"]: s["reason"][:8] for s in result["skipped"]} == {
        "zero": "price 0.", "neg": "price -3", "none": "no price"}
    assert result["errors"] == [{"index": 4, "id": "boom", "error": "RuntimeError: cannot price this one"}]
    assert result["invalid"] == 1 and result["green"] == 2  # 90 vs 100, 90 vs 80
    assert result["error"] == pytest.approx((10 + 50 + 10) / 3)
    saved = json.loads(Path(result["file"]).read_text())
    assert saved["errors"] == result["errors"] and len(saved["skipped"]) == 3
    assert Path(result["chart"]).stat().st_size > 5000


def test_nan_and_inf_guesses_are_counted_and_file_stays_json(tmp_path, test_items):
    class Odd:
        name = "odd"

        def settings(self):
            return {}

        def predict(self, prompts):
            return [float("nan"), float("inf"), None, "12"][: len(prompts)]

    result = evaluate(Odd(), test_items[:4], results_dir=tmp_path, show=False)
    assert result["invalid"] == 3 and result["red"] >= 3
    saved = json.loads(Path(result["file"]).read_text())  # strict JSON (no NaN tokens)
    assert [r["guess"] for r in saved["items"]] == ["nan", "inf", None, "12"]


def test_empty_and_unpriced_input(tmp_path):
    with pytest.raises(PricerError, match="empty"):
        evaluate(ConstantPredictor(1), [], show=False)
    with pytest.raises(PricerError, match="price above 0"):
        evaluate(ConstantPredictor(1), [Item("x", "p", 0.0)], show=False)


def test_guesses_predictor_matches_ids(tmp_path, test_items):
    csv = tmp_path / "g.csv"
    first = test_items[:3]
    csv.write_text(f"id,guess\n{first[1].id},{first[1].price}\n{first[0].id},oops\n")
    result = evaluate(GuessesPredictor(csv), first, show=False)
    assert [r["scored_guess"] for r in result["items"]] == [0.0, first[1].price, 0.0]
    assert result["invalid"] == 2 and result["items"][1]["error"] == 0
    other = tmp_path / "other.csv"
    other.write_text("id,guess\nnope,3\n")
    with pytest.raises(PricerError, match="ids"):
        evaluate(GuessesPredictor(other), first, show=False)


def test_fingerprint_same_items_same_print(test_items):
    assert fingerprint(test_items[:10]) == fingerprint(list(test_items[:10]))
    assert fingerprint(test_items[:10]) != fingerprint(test_items[1:11])


def test_cli_json_contract_subprocess(tmp_path):
    out = subprocess.run([PRICER, "eval", "--data", str(AMAZON_TEST), "--predictor", "random",
                          "--seed", "42", "--size", "250", "--json", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object, nothing else on stdout
    random.seed(42)
    items = read_items(AMAZON_TEST)[:250]
    error, rmsle, hits = reference_tester([random.randrange(1, 1000) for _ in items], items)
    assert (result["error"], result["rmsle"], result["hits"], result["n"]) == (error, rmsle, hits, 250)


def test_cli_constant_train_mean_and_leaderboard(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "--data", str(AMAZON_TEST), "--predictor", "constant",
                              "--train", str(AMAZON_TRAIN), "--size", "50", "--json",
                              "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    mean = sum(i.price for i in read_items(AMAZON_TRAIN, split="train")) / 14326
    assert json.loads(res.stdout)["settings"]["value"] == pytest.approx(mean)
    res = runner.invoke(app, ["eval", "--data", str(AMAZON_TEST), "--predictor", "random",
                              "--size", "50", "--results", str(tmp_path)])
    assert res.exit_code == 0 and "random Error=$" in res.output
    found, _ = read_results(tmp_path)
    board = rows(found)
    assert len(board) == 2 + len(PUBLISHED)  # ours + the reference's, as the data is the reference's
    assert [r["error"] for r in board] == sorted(r["error"] for r in board)
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path)])
    assert res.exit_code == 0 and "published" in res.output
    assert (tmp_path / "leaderboard.png").stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (["--predictor", "constant"], "needs a train split"),
    (["--predictor", "nosuch"], "unknown predictor"),
    (["--predictor", "random", "--size", "0"], "--size"),
    (["--predictor", "baseline", "--path", "/nonexistent.joblib"], "no such saved baseline"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, args, message):
    out = subprocess.run([PRICER, "eval", "--data", str(AMAZON_TEST), *args, "--results",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and message in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr


def test_cli_bad_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    noprice = tmp_path / "noprice.jsonl"
    noprice.write_text('{"text": "a thing"}\n')
    for path, message in [(empty, "empty"), (noprice, "no 'price' column")]:
        out = subprocess.run([PRICER, "eval", "--data", str(path), "--predictor", "random",
                              "--results", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in " ".join(out.stderr.split())  # Rich wraps
        assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_llm_predictor_through_registry(tiny_llama, test_items):
    """greedy is built by the prediction engineer's load_llm_predictor; the harness scores it
    (a random-weight model mostly writes no price: those are counted as misses)."""
    predictor = make_predictor("greedy", model=str(tiny_llama), precision="fp32", batch_size=2)
    result = evaluate(predictor, test_items, size=4, show=False)
    assert result["n"] == 4 and result["settings"]["method"] == "greedy"
    assert result["invalid"] == sum(not r["valid"] for r in result["items"])
    assert all(r["scored_guess"] >= 0 for r in result["items"])


def test_leaderboard_ignores_other_json_and_reports_broken(tmp_path, test_items):
    evaluate(ConstantPredictor(100), test_items[:5], results_dir=tmp_path / "a", show=False)
    evaluate(RandomPredictor(1), test_items[:5], results_dir=tmp_path / "b", show=False)
    (tmp_path / "report.json").write_text('{"source": "not a result"}')
    (tmp_path / "broken.json").write_text('{"predictor": ')
    found, warnings = read_results(tmp_path)
    assert sorted(r["predictor"] for r in found) == ["constant", "random"]
    assert len(warnings) == 1 and "broken.json" in warnings[0]
    assert len(rows(found, with_reference=False)) == 2
