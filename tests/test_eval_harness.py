"""The harness on real data: the reference's procedure, bad input, result files, CLI contract."""

import io
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN, ROOT
from pricer.data.items import Item, read_items
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate, fingerprint
from pricer.evaluate.leaderboard import PUBLISHED, read_results, rows
from pricer.predict.base import Predictor
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
    assert result["error"] == pytest.approx(error, rel=1e-12)  # scikit-learn's sums, same figure
    assert result["rmsle"] == pytest.approx(rmsle, rel=1e-12)
    assert (result["hits"], result["n"]) == (hits, 250)
    assert f"{result['error']:.2f}" == f"{error:.2f}"
    assert result["data"]["reference"] is True


def test_constant_matches_reference_formulas(test_items):
    result = evaluate(make_predictor("constant", value=220.46), test_items, show=False)
    error, rmsle, hits = reference_tester([220.46] * 250, test_items[:250])
    assert result["error"] == pytest.approx(error, abs=1e-9)
    assert result["rmsle"] == pytest.approx(rmsle, abs=1e-12)
    assert result["hits"] == hits and result["settings"] == {"value": 220.46}


def test_table_has_one_line_per_item(test_items):
    """The per-item table on 2,000 items (its speed is measured in benchmarks/bench_eval.py)."""
    items = (test_items * 3)[:2000]
    out = io.StringIO()
    result = evaluate(ConstantPredictor(200), items, size=2000, console=Console(file=out))
    assert result["n"] == 2000
    lines = out.getvalue().splitlines()
    assert len(lines) == 2002  # header + one line per item + summary
    assert lines[1].split()[:3] == ["1", "$200.00", f"${items[0].price:,.2f}"]


def test_bad_items_and_failing_predictor(tmp_path, test_items):
    items = [Item("a", test_items[0].text, 100.0), Item("zero", test_items[1].text, 0.0),
             Item("neg", test_items[2].text, -3.0), Item("none", test_items[3].text, None),
             Item("boom", test_items[4].text + " BOOM", 50.0), Item("b", test_items[5].text, 80.0)]

    class Flaky(Predictor):
        name, batch_size, calls = "flaky", 8, 0

        def predict(self, items):
            self.calls += 1
            if any("BOOM" in i.text for i in items):
                raise RuntimeError("cannot price this one")
            return [90.0 for _ in items]

    out = io.StringIO()
    result = evaluate(Flaky(), items, results_dir=tmp_path, console=Console(file=out, width=200))
    shown = out.getvalue()
    assert "skipped: price 0.0 <= 0" in shown and "none:None" in shown
    assert "flaky Error=$23.33 RMSLE=" in shown and "1 failed" in shown and "3 skipped" in shown
    assert result["n"] == 3  # a, boom (a miss), b
    assert {s["id"]: s["reason"][:8] for s in result["skipped"]} == {
        "zero": "price 0.", "neg": "price -3", "none": "no price"}
    assert result["errors"] == [{"index": 4, "id": "boom", "error": "RuntimeError: cannot price this one"}]
    assert result["invalid"] == 1 and result["green"] == 2  # 90 vs 100, 90 vs 80
    assert result["error"] == pytest.approx((10 + 50 + 10) / 3)
    saved = json.loads(Path(result["file"]).read_text())
    assert saved["errors"] == result["errors"] and len(saved["skipped"]) == 3
    assert saved["failed"] == 1  # a partial failure is flagged in the result...
    assert rows(read_results(tmp_path)[0])[0]["predictor"] == "flaky (1 failed)"  # ...and the board
    assert Path(result["chart"]).stat().st_size > 5000


def test_nan_and_inf_guesses_are_counted_and_file_stays_json(tmp_path, test_items):
    class Odd(Predictor):
        name = "odd"

        def predict(self, prompts):
            return [float("nan"), float("inf"), None, "12"][: len(prompts)]

    result = evaluate(Odd(), test_items[:4], results_dir=tmp_path, show=False)
    assert result["invalid"] == 3 and result["red"] >= 3
    saved = json.loads(Path(result["file"]).read_text())  # strict JSON (no NaN tokens)
    assert [r["guess"] for r in saved["items"]] == ["nan", "inf", None, "12"]


def test_empty_and_unpriced_input(tmp_path):
    with pytest.raises(PricerError, match="empty"):
        evaluate(ConstantPredictor(1), [], show=False)
    with pytest.raises(PricerError, match="usable price"):
        evaluate(ConstantPredictor(1), [Item("x", "p", 0.0)], show=False)


def test_every_item_failing_is_an_error_and_writes_nothing(tmp_path, test_items):
    class Broken(Predictor):
        name = "broken"

        def predict(self, prompts):
            raise ConnectionError("down")

    with pytest.raises(PricerError, match="every item failed.*down"):
        evaluate(Broken(), test_items[:3], results_dir=tmp_path, show=False)
    assert list(tmp_path.iterdir()) == []


def test_truth_above_the_curation_bound_is_skipped_and_counted(test_items):
    items = [Item("ok", test_items[0].text, 100.0), Item("huge", test_items[1].text, 1e12)]
    assert evaluate(ConstantPredictor(100), items, show=False)["n"] == 2  # no bound given
    result = evaluate(ConstantPredictor(100), items, show=False, max_price=999.49)
    assert result["n"] == 1 and result["error"] == 0
    assert result["skipped"] == [{"index": 1, "id": "huge",
                                  "reason": "price 1e+12 above the curation bound $999.49"}]


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


def test_fingerprint_same_items_same_print(test_items, tmp_path):
    """The same items read from two formats print the same; any change of text or price does not."""
    saved = tmp_path / "copy.jsonl"
    saved.write_text("".join(json.dumps({"id": f"x{n}", "text": json.loads(line)["text"],
                                         "price": json.loads(line)["price"]}) + "\n"
                             for n, line in zip(range(10), AMAZON_TEST.open())))
    again = read_items(saved)
    assert again is not test_items and [i.id for i in again] != [i.id for i in test_items[:10]]
    assert fingerprint(again) == fingerprint(test_items[:10])  # ids do not count, content does
    changed = again[:9] + [Item(again[9].id, again[9].text, again[9].price + 0.01)]
    assert fingerprint(changed) != fingerprint(test_items[:10])
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
    assert result["error"] == pytest.approx(error, rel=1e-12)
    assert result["rmsle"] == pytest.approx(rmsle, rel=1e-12)
    assert (result["hits"], result["n"]) == (hits, 250)


def test_cli_constant_train_mean_and_leaderboard(tmp_path):
    res = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "constant", "--train",
                           AMAZON_TRAIN, "--eval-size", "50", "--json", "--results", tmp_path))
    train = read_items(AMAZON_TRAIN, split="train")
    mean = sum(i.price for i in train) / len(train)  # all within the curation bounds
    result = json.loads(res.stdout)
    assert result["settings"]["value"] == pytest.approx(mean)
    assert result["fit"]["train_items"] == 14326 and result["fit"]["dropped"] == {}
    res = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "random", "--size", "50",
                           "--results", tmp_path))
    assert "random Error=$" in res.stdout
    found, _ = read_results(tmp_path)
    board = rows(found)
    assert len(board) == 2 + len(PUBLISHED)  # ours + the reference's, as the data is the reference's
    assert [r["error"] for r in board] == sorted(r["error"] for r in board)
    res = assert_ok(pricer("leaderboard", "--results", tmp_path))
    assert "published" in res.stdout
    assert (tmp_path / "leaderboard.png").stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (["--predictor", "constant"], "needs a train split"),
    (["--predictor", "nosuch"], "unknown predictor"),
    (["--predictor", "random", "--size", "0"], "--eval-size"),
    (["--predictor", "baseline", "--path", "/nonexistent.skops"], "no such saved baseline"),
    (["--predictor", "random", "--opt", "branches=4"], "no option branches"),
    (["--predictor", "random", "--opt", "seed=abc"], "whole number"),
    (["--predictor", "random", "--opt", "seed"], "key=value"),
    (["--predictor", "expected", "--opt", "merge=maybe"], "true or false"),
    (["--predictor", "greedy", "--opt", "branches=4"], "is for expected"),
    (["--predictor", "constant", "--opt", "value=inf"], "finite price"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, args, message):
    assert_bad_input(pricer("eval", "--data", AMAZON_TEST, *args, "--results", tmp_path), message)


def test_cli_opt_reaches_the_predictor(tmp_path):
    res = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "random", "--opt",
                           "seed=7", "--size", "5", "--json", "--results", tmp_path))
    rng = random.Random(7)
    result = json.loads(res.stdout)
    assert result["settings"] == {"seed": 7}
    items = read_items(AMAZON_TEST)[:5]
    assert result["error"] == pytest.approx(
        sum(abs(rng.randrange(1, 1000) - i.price) for i in items) / 5)


def test_cli_bad_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    noprice = tmp_path / "noprice.jsonl"
    noprice.write_text('{"text": "a thing"}\n')
    for path, message in [(empty, "empty"), (noprice, "no 'price' column")]:
        assert_bad_input(pricer("eval", "--data", path, "--predictor", "random", "--results",
                                tmp_path), message)


@pytest.mark.slow
def test_llm_predictor_through_registry(tiny_llama, test_items):
    """greedy is built by the prediction engineer's load_llm_predictor; the harness scores it
    (a random-weight model mostly writes no price: those are counted as misses)."""
    predictor = make_predictor("greedy", model=str(tiny_llama), precision="fp32", batch_size=2,
                               max_new_tokens=3)
    result = evaluate(predictor, test_items, size=4, show=False)
    assert result["n"] == 4 and result["settings"]["method"] == "greedy"
    assert result["settings"]["max_new_tokens"] == 3  # the option reached the predictor
    direct = predictor.predict_details(test_items[:4])
    for row, alone, item in zip(result["items"], direct, test_items):
        assert row["guess"] == alone["price"]  # the harness scores what the model says
        assert row["valid"] == (alone["price"] is not None)
        assert row["truth"] == item.price


def test_leaderboard_ignores_other_json_and_reports_broken(tmp_path, test_items):
    evaluate(ConstantPredictor(100), test_items[:5], results_dir=tmp_path / "a", show=False)
    evaluate(RandomPredictor(1), test_items[:5], results_dir=tmp_path / "b", show=False)
    (tmp_path / "report.json").write_text('{"source": "not a result"}')
    (tmp_path / "broken.json").write_text('{"predictor": ')
    found, warnings = read_results(tmp_path)
    assert sorted(r["predictor"] for r in found) == ["constant", "random"]
    assert len(warnings) == 1 and "broken.json" in warnings[0]
    assert len(rows(found, with_reference=False)) == 2


def test_leaderboard_ranks_only_results_on_the_same_data(tmp_path, test_items):
    """One board per (data fingerprint, size): 5 items and 8 items are never ranked together;
    published rows join only the reference's split; an old result file (no interval, MSE, R^2
    or size) still loads and ranks."""
    from pricer.evaluate.leaderboard import boards

    evaluate(ConstantPredictor(100), test_items[:5], results_dir=tmp_path, show=False)
    evaluate(RandomPredictor(1), test_items[:5], results_dir=tmp_path, show=False)
    evaluate(ConstantPredictor(50), test_items[:8], results_dir=tmp_path, show=False)
    mine = [Item(f"x{n}", f"Thing {n}", 10.0 + n, None) for n in range(4)]
    evaluate(ConstantPredictor(12), mine, results_dir=tmp_path, show=False)
    old = json.loads(next(tmp_path.glob("random-*.json")).read_text())
    for key in ("error_ci", "mse", "r2", "size"):
        old.pop(key)
    (tmp_path / "old.json").write_text(json.dumps(old | {"predictor": "old random"}))
    found, _ = read_results(tmp_path)
    got = boards(found)
    assert [(b["size"], b["reference"]) for b in got] == [(8, True), (5, True), (4, False)]
    five = got[1]["rows"]
    ours = [r for r in five if not r["published"]]
    assert sorted(r["predictor"] for r in ours) == ["constant", "old random", "random"]
    assert len(five) == 3 + len(PUBLISHED)
    assert [r["error"] for r in five] == sorted(r["error"] for r in five)
    assert next(r for r in ours if r["predictor"] == "old random")["error_ci"] is None
    assert all(r["error_ci"][0] <= r["error"] <= r["error_ci"][1] for r in ours
               if r["predictor"] != "old random")
    assert [r["predictor"] for r in got[2]["rows"]] == ["constant"]  # not the reference's data
    res = assert_ok(pricer("leaderboard", "--results", tmp_path))
    assert "3 data set(s)" in res.stdout
    assert len(list(tmp_path.glob("leaderboard*.png"))) == 3


def test_cli_size_all_evaluates_the_whole_split(tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"id": f"s{n}", "text": f"Lamp {n}\nA lamp.",
                                         "price": 20.0 + n}) + "\n" for n in range(7)))
    res = assert_ok(pricer("eval", "--data", small, "--predictor", "constant", "--value", "25",
                           "--size", "all", "--json", "--results", tmp_path / "r"))
    result = json.loads(res.stdout)
    assert result["n"] == 7 and result["size"] == 7
    assert result["error"] == pytest.approx(sum(abs(25 - (20 + n)) for n in range(7)) / 7)
    assert {"error_ci", "mse", "r2"} <= result.keys()
    assert_bad_input(pricer("eval", "--data", small, "--predictor", "random", "--size", "some",
                            "--results", tmp_path / "r"), "--eval-size", "'all'")
