"""`pricer demo` end to end, on the tiny random Llama with a tiny training config, run from a
folder that is not the repository."""

import json
from pathlib import Path

from clirun import assert_bad_input, assert_ok, pricer


def test_demo_runs_the_whole_loop_and_records_its_evaluation(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"model: {tiny_llama}\nmax_steps: 2\nbatch_size: 4\nmax_length: 96\n"
                      "learning_rate: 1.0e-2\nsave_steps: 100\nreport_to: none\n")
    done = assert_ok(pricer("demo", "--out", "quick", "--config", config, "--eval-size", "3"))
    out = tmp_path / "quick"
    for step in ("1. data", "2. baseline", "3. base model", "4. fine-tune", "5. fine-tuned",
                 "6. leaderboard"):
        assert step in done.stdout, step
    assert "trainable params:" in done.stdout

    card = json.loads((out / "adapter" / "run_card.json").read_text())
    assert card["steps"] == 2 and card["base_model"] == str(tiny_llama)
    assert card["evaluated_by"] == "pricer demo" and "eval_note" not in card
    result = json.loads(Path(card["evaluation"]["file"]).read_text())
    assert result["n"] == card["evaluation"]["n"] == 3
    assert result["error"] == card["evaluation"]["error"]
    assert "(by `pricer demo`)" in (out / "adapter" / "run_card.md").read_text()
    names = {json.loads(p.read_text())["predictor"] for p in (out / "results").glob("*.json")}
    tiny = Path(str(tiny_llama)).name
    assert names == {"constant", f"base {tiny} (greedy)", f"fine-tuned {tiny} (greedy)"}
    assert (out / "results" / "leaderboard.png").exists()

    again = assert_ok(pricer("demo", "--out", "quick", "--config", config, "--eval-size", "3"))
    assert "reusing the finished run" in again.stdout  # the finished run is kept


def test_demo_bad_input(tmp_path):
    assert_bad_input(pricer("demo", "--out", tmp_path / "q", "--config", tmp_path / "none.yaml"),
                     "none.yaml")
    assert_bad_input(pricer("demo", "--out", tmp_path / "q", "--eval-size", "-1"), "eval-size")
