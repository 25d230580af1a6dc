"""Every leaderboard figure has its file (issue 20, part 4): the summaries `pricer eval
--summaries DIR` writes (no per-item rows), the boards `pricer leaderboard --summaries DIR`
prints from them, and the files in docs/measurements/accuracy/ that hold the docs' leaderboard."""

import json
import re

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, ROOT
from pricer.data.items import read_items
from pricer.evaluate.harness import evaluate
from pricer.evaluate.summary import (FIELDS, FORMAT, boards, read_summaries, summary_of,
                                     write_summary)
from pricer.predict.simple import ConstantPredictor

DOCS = ROOT / "docs" / "measurements" / "accuracy"
ROWS = 27  # the leaderboard's rows in docs/accuracy.md: one file each


def small_file(path, prices, name="Lamp"):
    path.write_text("".join(json.dumps({"id": f"{name}-{n}", "text": f"{name} {n}\nA {name}.",
                                        "price": p}) + "\n" for n, p in enumerate(prices)))
    return path


def board_lines(stdout: str) -> list[list[str]]:
    """The rows of the printed boards: lines that start with a rank."""
    return [line.split() for line in stdout.splitlines() if re.match(r"\s*\d+\s{2,}\S", line)]


def test_summary_of_a_real_evaluation_round_trips_without_items(tmp_path):
    items = read_items(AMAZON_TEST)[:12]
    result = evaluate(ConstantPredictor(100), items, size=None, show=False)
    summary = summary_of(result, str(AMAZON_TEST), command="pricer eval ...")
    path, replaced = write_summary(summary, tmp_path / "s")
    assert path.name == "constant.json" and not replaced
    [back] = read_summaries(tmp_path / "s")
    assert back["file"] == str(path)
    assert set(json.loads(path.read_text())) == set(FIELDS)  # nothing else: no per-item rows
    assert back["format"] == FORMAT and back["predictor"] == "constant"
    assert back["settings"] == {"value": 100.0}
    assert back["data"] == {"name": "amazon-pricer/test.jsonl",
                            "fingerprint": result["data"]["fingerprint"]}
    assert back["n"] == 12 and back["error"] == result["error"]
    assert back["error_ci95"] == result["error_ci"]
    assert (back["rmsle"], back["hits_pct"], back["mse"], back["r2"]) == (
        result["rmsle"], result["hits"], result["mse"], result["r2"])
    assert back["error"] == pytest.approx(sum(abs(100 - i.price) for i in items) / 12)
    assert back["date"] == result["created"][:10] and "AVX512-BF16" in back["machine"]
    text = path.read_text()
    for item in items:  # no test item's id or title copied into the file
        assert item.id not in text and item.text.split("\n")[0][:30] not in text
    _, replaced = write_summary(summary, tmp_path / "s")
    assert replaced


def test_eval_writes_the_summary_and_the_board_is_sorted_by_error(tmp_path):
    data = small_file(tmp_path / "my items.jsonl", [20.0 + n for n in range(7)])
    figures = {}
    for value in (60, 23, 40):
        res = assert_ok(pricer("eval", "--data", data, "--predictor", "constant", "--value", value,
                               "--name", f"c{value}", "--size", "all", "--json",
                               "--results", tmp_path / "r", "--summaries", tmp_path / "s"))
        result = json.loads(res.stdout)
        figures[f"c{value}"] = result["error"]
        summary = json.loads((tmp_path / "s" / f"c{value}.json").read_text())
        assert set(summary) == set(FIELDS)
        assert summary["error"] == result["error"] and summary["n"] == 7
        assert summary["command"] == (
            f"pricer eval --data '{data}' --eval-size all --json --results {tmp_path / 'r'} "
            f"--summaries {tmp_path / 's'} --name c{value} --predictor constant --value {value}.0")
        assert summary["data"]["name"] == f"{tmp_path.name}/my items.jsonl"
        assert "Lamp" not in json.dumps(summary)
        # the results folder keeps the per-item rows; the summary never does
        [full] = (tmp_path / "r").glob(f"c{value}-*.json")
        assert len(json.loads(full.read_text())["items"]) == 7
    assert figures["c23"] < figures["c40"] < figures["c60"]
    res = assert_ok(pricer("leaderboard", "--summaries", tmp_path / "s"))
    rows = board_lines(res.stdout)
    assert [r[1] for r in rows] == ["c23", "c40", "c60"]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [float(r[2]) for r in rows] == [round(figures[k], 2) for k in ("c23", "c40", "c60")]
    assert all(r[-3] == "7" and re.fullmatch(r"\d{4}-\d\d-\d\d", r[-2]) for r in rows)
    assert "machine 1: " in res.stdout and "1 data set(s)" in res.stdout
    assert not list((tmp_path / "s").glob("*.png"))  # no chart unless asked
    res = assert_ok(pricer("leaderboard", "--summaries", tmp_path / "s", "--chart",
                           tmp_path / "board.png"))
    assert (tmp_path / "board.png").stat().st_size > 5000


def test_two_data_sets_are_two_boards(tmp_path):
    one = small_file(tmp_path / "one.jsonl", [10.0, 20.0, 30.0, 40.0, 50.0])
    two = small_file(tmp_path / "two.jsonl", [100.0, 200.0, 300.0], name="Desk")
    out = tmp_path / "s"
    for data, value, name in ((one, 30, "one-a"), (one, 15, "one-b"), (two, 250, "two-a")):
        assert_ok(pricer("eval", "--data", data, "--predictor", "constant", "--value", value,
                         "--name", name, "--size", "all", "--results", tmp_path / "r",
                         "--summaries", out))
    # the same file's first 3 items: the same name, another n, so another board
    assert_ok(pricer("eval", "--data", one, "--predictor", "random", "--name", "one-3",
                     "--size", "3", "--results", tmp_path / "r", "--summaries", out))
    got = boards(read_summaries(out))
    assert [(b["name"], b["n"]) for b in got] == [(f"{tmp_path.name}/one.jsonl", 5),
                                                  (f"{tmp_path.name}/one.jsonl", 3),
                                                  (f"{tmp_path.name}/two.jsonl", 3)]
    assert [[r["predictor"] for r in b["rows"]] for b in got] == [["one-a", "one-b"], ["one-3"],
                                                                  ["two-a"]]
    res = assert_ok(pricer("leaderboard", "--summaries", out))
    assert "3 data set(s)" in res.stdout
    titles = [line.strip() for line in res.stdout.splitlines() if "leaderboard:" in line]
    assert len(titles) == 3 and "two.jsonl, 3 items" in titles[2]
    assert [r[1] for r in board_lines(res.stdout)] == ["one-a", "one-b", "one-3", "two-a"]


def test_baselines_write_summaries(tmp_path):
    train = small_file(tmp_path / "train.jsonl", [10.0, 30.0, 50.0, 70.0])
    test = small_file(tmp_path / "test.jsonl", [20.0, 40.0, 60.0], name="Desk")
    assert_ok(pricer("baselines", "--train", train, "--test", test, "--only", "constant,random",
                     "--eval-size", "all", "--results", tmp_path / "r",
                     "--summaries", tmp_path / "s"))
    got = {s["predictor"]: s for s in read_summaries(tmp_path / "s")}
    assert sorted(got) == ["constant", "random"]
    assert got["constant"]["settings"] == {"value": 40.0}
    assert got["constant"]["error"] == pytest.approx(40 / 3)
    assert got["constant"]["command"].startswith("pricer baselines --train ")
    assert got["constant"]["data"]["name"] == f"{tmp_path.name}/test.jsonl"


GOOD = {"format": FORMAT, "predictor": "x", "settings": {}, "data": {"name": "d.jsonl",
        "fingerprint": None}, "n": 3, "error": 10.0, "error_ci95": [5.0, 15.0], "rmsle": 0.5,
        "hits_pct": 33.3, "mse": 120.0, "r2": None, "command": None, "date": "2026-12-07",
        "machine": "a CPU", "source": "a test"}


@pytest.mark.parametrize("content, message", [
    ('{"predictor": ', "invalid JSON"),
    ("[1, 2]", "a JSON list"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "machine"}), "missing machine"),
    (json.dumps(GOOD | {"error_ci95": [11.0, 15.0]}), "error_ci95"),
    (json.dumps(GOOD | {"n": "748"}), "n must be"),
    (json.dumps(GOOD | {"format": "something else"}), "format"),
    (json.dumps(GOOD | {"items": [{"id": "a", "truth": 3.0}]}), "per-item rows"),
    (json.dumps(GOOD | {"note": "more"}), None),  # another extra key is not an error...
])
def test_a_malformed_file_is_one_line(tmp_path, content, message):
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "bad.json").write_text(content)
    result = pricer("leaderboard", "--summaries", tmp_path)
    if message is None:  # ...the board shows both
        assert_ok(result)
        assert len(board_lines(result.stdout)) == 2
        return
    line = assert_bad_input(result, "bad.json", "not a leaderboard summary", message)
    assert str(tmp_path / "bad.json") in line


def test_leaderboard_flag_mistakes_are_one_line(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps(GOOD))
    assert_bad_input(pricer("leaderboard", "--summaries", tmp_path, "--results", tmp_path),
                     "choose one of --results and --summaries")
    assert_bad_input(pricer("leaderboard", "--summaries", tmp_path, "--reference"), "--reference")
    assert_bad_input(pricer("leaderboard", "--summaries", tmp_path / "nosuch"), "no such folder")
    assert_bad_input(pricer("leaderboard", "--summaries", tmp_path / "x.json"), "no such folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_bad_input(pricer("leaderboard", "--summaries", empty), "no summary files")
    assert_bad_input(pricer("eval", "--data", AMAZON_TEST, "--predictor", "random",
                            "--summaries", tmp_path / "x.json", "--results", tmp_path / "r"),
                     "is a file")


def _docs_table() -> dict[str, list[str]]:
    """The leaderboard table of docs/accuracy.md: {predictor: [error cell, RMSLE, hits, MSE, R²]}."""
    text = (ROOT / "docs" / "accuracy.md").read_text()
    lines = text[text.index("| predictor | error $ (95 % CI) |"):].splitlines()[2:]
    table = {}
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("**", "").replace("`", "") for c in line.strip("|").split("|")]
        table[cells[0].partition(" (")[0]] = cells[1:]
    return table


def _agrees(value: float, cell: str) -> bool:
    """`value` rounded as the table's cell is written equals the cell."""
    cell = cell.replace(",", "")
    decimals = len(cell.partition(".")[2])
    return round(value, decimals) == float(cell)


def test_every_docs_row_has_its_file_and_the_figures_agree():
    summaries = read_summaries(DOCS)  # every file parses with the reader (else PricerError)
    for s in summaries:
        assert set(json.loads(open(s["file"]).read())) == set(FIELDS), s["file"]
        assert s["n"] == 748 and s["data"]["name"] == "amazon-pricer/test.jsonl"
        assert s["command"] and s["command"].startswith(("pricer ", "head -n 997 "))
        assert s["source"].startswith(("transcribed from the docs/accuracy.md",
                                       "re-measured with pricer eval", "measured by pricer eval"))
    [board] = boards(summaries)  # one data set: the 748 test items
    table = _docs_table()
    assert len(table) == ROWS
    assert sorted(s["predictor"] for s in summaries) == sorted(table)
    for s in summaries:
        error, rmsle, hits, mse, r2 = table[s["predictor"]]
        low, high = re.fullmatch(r"[\d.,]+ \(([\d.,]+)-([\d.,]+)\)", error).groups()
        assert _agrees(s["error"], error.split()[0]), s["predictor"]
        assert _agrees(s["error_ci95"][0], low) and _agrees(s["error_ci95"][1], high)
        for value, cell in ((s["rmsle"], rmsle), (s["hits_pct"], hits), (s["mse"], mse),
                            (s["r2"], r2)):
            assert _agrees(value, cell), (s["predictor"], value, cell)
    assert [r["predictor"] for r in board["rows"]] == list(table)  # the docs' order: by error
    fresh = {s["predictor"] for s in summaries if s["source"].startswith("re-measured")}
    assert fresh == {"constant", "random"}
    res = assert_ok(pricer("leaderboard", "--summaries", DOCS))
    assert len(board_lines(res.stdout)) == ROWS and "1 data set(s)" in res.stdout


def test_the_docs_fingerprint_is_the_test_split_s():
    """The transcribed files name the data by the fingerprint today's code gives all 748 items,
    the one a fresh `pricer eval --eval-size all` records."""
    from pricer.data.items import fingerprint

    [fp] = {s["data"]["fingerprint"] for s in read_summaries(DOCS)}
    assert fp == fingerprint(read_items(AMAZON_TEST))
