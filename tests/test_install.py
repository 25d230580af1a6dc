"""What a new user does first, on any supported Python (CI runs this file on Python 3.13 too,
Colab's): the installed command answers, a 5-step train on a tiny model and an eval work, and
installing pricer where torch is already installed (Colab's CUDA torch) keeps that torch."""

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from clirun import assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN, ROOT


def test_the_installed_command_answers_with_its_version():
    script = Path(sys.executable).parent / "pricer"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert version("pricer") in done.stdout


def test_installing_pricer_keeps_the_torch_that_is_there():
    """`pip install .` as a Colab user runs it (no constraints file): pip's own plan, resolved
    against the registry, installs nothing in place of the torch this environment has."""
    import torch

    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", str(ROOT)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    planned = {entry["metadata"]["name"].lower(): entry["metadata"]["version"]
               for entry in json.loads(done.stdout)["install"]}
    assert "pricer" in planned  # the plan is real: pricer itself is (re)installed
    assert "torch" not in planned, (f"pip would replace torch {torch.__version__} "
                                    f"with {planned.get('torch')}")


def test_five_training_steps_then_an_eval(tiny_llama, tmp_path):
    run, results = tmp_path / "run", tmp_path / "results"
    done = assert_ok(pricer("train", "--model", tiny_llama, "--data", AMAZON_TRAIN, "--out", run,
                            "--max-steps", "5", "--batch-size", "2", "--report-to", "none",
                            "--no-eval"))
    assert "trainable params:" in done.stdout
    card = json.loads((run / "run_card.json").read_text())
    assert card["items"] == 10 and card["steps"] == 5  # 5 steps x batch 2
    scored = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "greedy",
                              "--model", tiny_llama, "--adapter", run, "--eval-size", "4",
                              "--precision", "fp32", "--results", results, "--json"))
    result = json.loads(scored.stdout)
    assert result["n"] == 4 and result["error"] >= 0
    assert result["settings"]["adapter"] == str(run)
