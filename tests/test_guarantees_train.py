"""What `pricer train` guarantees (issue 13), each through the command line: nothing of the
user's is deleted, every bad setting fails before the first step in one line and leaves no run
folder behind, a half-written checkpoint does not break --resume, the time budget stops a run."""

import json
import shutil

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TRAIN


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:24]) + "\n")
    return path


def train_args(tiny_llama, data, out, *extra):
    return ("train", "--model", tiny_llama, "--data", data, "--out", out, "--batch-size", "4",
            "--learning-rate", "1e-2", "--report-to", "none", "--no-eval",
            "--set", "max_length=96", *extra)


@pytest.fixture(scope="module")
def finished_run(tiny_llama, train_file, tmp_path_factory):
    """A finished 6-step run with checkpoints at steps 2, 4 and 6."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert_ok(pricer(*train_args(tiny_llama, train_file, out, "--max-steps", "6",
                                 "--save-steps", "2")))
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-4",
                                                          "checkpoint-6"}
    return out


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tiny_llama, train_file, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("my notes")
    (work / "data.csv").write_text("a,b\n1,2\n")
    line = assert_bad_input(pricer(*train_args(tiny_llama, train_file, work, "--overwrite")),
                            "holds no pricer run")
    assert "--overwrite" not in line  # the refusal must not suggest the flag that deletes
    assert (work / "notes.txt").read_text() == "my notes"
    assert (work / "data.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in work.iterdir()) == ["data.csv", "notes.txt"]


def test_overwrite_replaces_a_pricer_run(tiny_llama, train_file, finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert_bad_input(pricer(*train_args(tiny_llama, train_file, run, "--max-steps", "1")),
                     "already holds a run")
    assert_ok(pricer(*train_args(tiny_llama, train_file, run, "--max-steps", "1", "--overwrite")))
    assert json.loads((run / "run_card.json").read_text())["steps"] == 1
    # the old run's checkpoints went with it; the new run saved its last step
    assert {p.name for p in run.glob("checkpoint-*")} == {"checkpoint-1"}


@pytest.mark.parametrize("setting, says", [
    (("--set", "eval_predictor=bogus"), "eval_predictor must be one of"),
    (("--eval-predictor", "bogus"), "eval_predictor"),
    (("--set", "target_modules=nonexistent_proj"), "nonexistent_proj"),
    (("--lora-dropout", "1.5"), "lora_dropout"),
    (("--eval-size", "-3"), "eval_size"),
    (("--max-items", "-1"), "max_items"),
    (("--set", "lora_rank=8"), "unknown config key"),
])
def test_a_bad_setting_fails_before_training_and_leaves_no_run(tiny_llama, train_file, tmp_path,
                                                                setting, says):
    out = tmp_path / "run"
    assert_bad_input(pricer(*train_args(tiny_llama, train_file, out, "--max-steps", "1", *setting)),
                     says)
    assert not out.exists()  # nothing that would block the rerun


def test_missing_evaluation_data_fails_before_training(tiny_llama, train_file, tmp_path):
    out = tmp_path / "run"
    args = [a for a in train_args(tiny_llama, train_file, out, "--max-steps", "1") if a != "--no-eval"]
    assert_bad_input(pricer(*args, "--eval-data", tmp_path / "missing.jsonl"), "missing.jsonl")
    assert not out.exists()


def test_out_is_a_file(tiny_llama, train_file, tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("keep me")
    assert_bad_input(pricer(*train_args(tiny_llama, train_file, file)), "is a file")
    assert file.read_text() == "keep me"


def test_corrupt_parquet_training_file(tiny_llama, tmp_path):
    bad = tmp_path / "train.parquet"
    bad.write_bytes(b"PAR1" + b"\x00garbage" * 50 + b"PAR1")
    out = tmp_path / "run"
    assert_bad_input(pricer(*train_args(tiny_llama, bad, out)), "train.parquet")
    assert not out.exists()


def test_resume_skips_a_half_written_checkpoint(tiny_llama, train_file, finished_run, tmp_path):
    """As if killed while saving checkpoint-6 (and with an empty checkpoint-8 folder): --resume
    continues from checkpoint-4, says so, and reaches the uninterrupted run's weights."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoint-6" / "trainer_state.json").unlink()
    (run / "checkpoint-6" / "optimizer.pt").unlink()
    (run / "checkpoint-8").mkdir()
    done = assert_ok(pricer(*train_args(tiny_llama, train_file, run, "--max-steps", "6",
                                        "--save-steps", "2", "--resume")))
    assert "resume from checkpoint-4" in done.stdout
    assert "checkpoint-6" in done.stdout and "checkpoint-8" in done.stdout  # what was skipped
    card = json.loads((run / "run_card.json").read_text())
    assert card["resumed_from"].endswith("checkpoint-4") and card["steps"] == 6
    a = load_file(finished_run / "adapter_model.safetensors")
    b = load_file(run / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k


def test_resume_with_only_incomplete_checkpoints_is_one_line(tiny_llama, train_file,
                                                              finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for checkpoint in run.glob("checkpoint-*"):
        (checkpoint / "trainer_state.json").unlink()
    assert_bad_input(pricer(*train_args(tiny_llama, train_file, run, "--max-steps", "6",
                                        "--save-steps", "2", "--resume")),
                     "no complete checkpoint")


def test_resume_extends_a_run_with_data_spelled_another_way(tiny_llama, train_file, finished_run,
                                                           tmp_path, monkeypatch):
    """--resume --max-steps 10 after the 6-step run trains steps 7-10 over the same items, as
    the Trainer allows, with --data ./train.jsonl for the run's absolute path (paths compared
    resolved); fewer steps or other data are refused, each setting named once."""
    import re

    from safetensors.torch import load_file

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    monkeypatch.chdir(train_file.parent)
    spelled = f"./{train_file.name}"
    assert spelled != str(train_file)
    done = assert_ok(pricer(*train_args(tiny_llama, spelled, run, "--max-steps", "10",
                                        "--save-steps", "2", "--resume")))
    assert "resume from checkpoint-6" in done.stdout
    card = json.loads((run / "run_card.json").read_text())
    assert card["steps"] == 10 and card["resumed_from"].endswith("checkpoint-6")
    assert card["items"] == 24 and card["data_fingerprint"] == json.loads(
        (finished_run / "run_card.json").read_text())["data_fingerprint"]
    assert {"checkpoint-8", "checkpoint-10"} <= {p.name for p in run.glob("checkpoint-*")}
    before, after = (load_file(finished_run / "adapter_model.safetensors"),
                     load_file(run / "adapter_model.safetensors"))
    assert any((before[k] - after[k]).abs().max().item() > 1e-6 for k in before)  # it trained on

    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[30:54]) + "\n")
    line = assert_bad_input(pricer(*train_args(tiny_llama, other, run, "--max-steps", "4",
                                               "--save-steps", "2", "--resume")), "different run")
    assert re.search(r"\((.*) differ\)", line)[1].split(", ") == ["data", "max_steps"]


def test_time_budget_stops_the_run_and_says_so(tiny_llama, train_file, tmp_path):
    out = tmp_path / "run"
    assert_ok(pricer(*train_args(tiny_llama, train_file, out, "--max-steps", "4",
                                 "--max-minutes", "0.000001")))
    card = json.loads((out / "run_card.json").read_text())
    assert card["stopped_by_time_budget"] is True and card["steps"] == 1
    assert "stopped by the time budget" in (out / "run_card.md").read_text()
    assert (out / "adapter_model.safetensors").exists()
