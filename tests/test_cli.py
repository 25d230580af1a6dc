"""One predictor path and one command-line language (issue 22): every command builds a
predictor the same way, by name with --opt or from --run; usage errors are one red line."""

import json

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import Item, read_items


def test_predict_takes_any_predictor_by_name_and_options():
    assert assert_ok(pricer("predict", "--predictor", "constant", "--opt", "value=123",
                            "Moen faucet")).stdout.strip() == "$123.00"
    assert assert_ok(pricer("predict", "-p", "constant", "--value", "9", "x")).stdout.strip() == "$9.00"
    assert_bad_input(pricer("predict", "-p", "constant", "--opt", "value=abc", "x"),
                     "value='abc' must be a number")
    assert_bad_input(pricer("predict", "-p", "constant", "--opt", "colour=red", "x"),
                     "no option colour", "it takes: value")


def test_run_reads_what_a_file_holds(tmp_path):
    """A saved baseline and an ensemble file are runs too: --run picks baseline / ensemble."""
    from pricer.predict.fit import fit_predictor
    from pricer.predict.registry import make_predictor

    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:300]) + "\n")
    fitted = make_predictor("features-lr")
    fit_predictor(fitted, read_items(train), (0.5, 1e6))
    saved = fitted.save(tmp_path / "features-lr.skops")
    text = "Red kettle, 1.7 litres, stainless steel"
    expected = fitted.predict([Item("1", text)])[0]
    assert assert_ok(pricer("predict", "--run", saved, text)).stdout.strip() == f"${expected:,.2f}"
    weights = tmp_path / "ens.json"
    assert_ok(pricer("ensemble", "--train", train, "--member", "constant", "--member",
                     f"baseline:path={saved}", "--val-size", "60", "-o", weights))
    scored = json.loads(assert_ok(pricer("eval", "--run", weights, "-d", AMAZON_TEST,
                                         "--eval-size", "5", "--results", tmp_path / "r",
                                         "--json")).stdout)
    assert scored["predictor"] == "ensemble" and scored["n"] == 5
    assert_bad_input(pricer("predict", "--run", weights, "-p", "greedy", "x"),
                     "read by --predictor ensemble, not greedy")
    assert_bad_input(pricer("predict", "--run", tmp_path / "nothing", "x"), "no such run")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_bad_input(pricer("predict", "--run", empty, "x"), "holds no model")


def test_options_come_from_the_constructors_and_rebuild_a_predictor(tmp_path):
    import inspect

    from pricer.predict.dnn import DnnPredictor
    from pricer.predict.registry import make_predictor, option_types, rebuild

    assert list(option_types("dnn")) == list(inspect.signature(DnnPredictor).parameters)
    assert "kind" not in option_types("bow-lr")  # fixed by the name
    assert "method" not in option_types("expected") and "branches" in option_types("expected")
    made = make_predictor("dnn", blocks="2", width=64, prices_like=str(AMAZON_TRAIN))
    assert made.get_params() == {"blocks": 2, "width": 64, "prices_like": AMAZON_TRAIN}
    again = rebuild(made)
    assert again.registry_name == "dnn" and again.config == made.config
    assert made.can_save and not make_predictor("constant", value=1).can_save


def test_predictors_receive_items_not_prompts():
    from pricer.data.prompts import test_prompt
    from pricer.predict.registry import make_predictor

    item = Item("1", "A kettle")
    assert Item("2", test_prompt("A kettle")).text == "A kettle"  # a prompt is unwrapped
    assert item.prompt == test_prompt("A kettle")
    guesses = make_predictor("constant", value=5)
    assert guesses.predict([item, "bare text"]) == [5.0, 5.0]


def test_usage_errors_are_one_red_line_and_renamed_flags_name_the_new_one():
    for args, says in ((("eval", "--bogus"), "no such option: --bogus"),
                       (("serve", "--max-items", "3"), "it is now --max-request-items"),
                       (("model", "memory", "--config", "x"), "it is now --model-config"),
                       (("eval", "--data"), "requires an argument"),
                       (("eval", "-d", str(AMAZON_TEST)), "--predictor name or --run path")):
        line = assert_bad_input(pricer(*args), says)
        assert "╭" not in line


def test_pricer_alone_points_at_the_demo():
    result = pricer()
    assert "pricer demo" in result.stdout + result.stderr


@pytest.mark.parametrize("flag", [("-o", "--out"), ("-d", "--data"), ("-m", "--model")])
def test_short_flags_are_the_same_everywhere(flag):
    short, long = flag
    for command in (("train",), ("predict",), ("eval",), ("demo",), ("export",), ("data",)):
        shown = pricer(*command, "--help").stdout
        if long in shown:
            assert short in shown, (command, long)


def test_the_layers_hold():
    """The import contract of .importlinter (cli -> serve -> evaluate/export/deals ->
    predict/train -> models -> data): no import back up, no circle in a package."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(sys.executable).parent / "lint-imports"  # beside this Python: PATH may lack it
    assert tool.is_file(), "import-linter is part of the test extra"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([str(tool), "--no-cache"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_a_huge_description_costs_what_the_run_was_trained_on(default_model_dir):
    """pricer.predict.prompting: the prompt is cut to the run's max_length (not the model's
    8,192-token context) with "Price is $" kept, and the tokenizer never sees megabytes."""
    from transformers import AutoTokenizer

    from pricer.data.prompts import CHARS_PER_TOKEN, PRICE_PREFIX, test_prompt
    from pricer.predict.prompting import encode, prompt_limit

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    seen = []

    def spy(texts, **kwargs):
        seen.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return tokenizer(texts, **kwargs)

    huge = " ".join(f"word{i % 97}" for i in range(750_000))  # ~5 MB
    limit = prompt_limit(8192, {"max_length": 128})
    assert limit == 128 and prompt_limit(8192) == 8192
    (ids,), (cut,) = encode(spy, [test_prompt(huge)], limit)
    assert cut and len(ids) == 128 and max(seen) < 128 * CHARS_PER_TOKEN + 20
    assert tokenizer.decode(ids).endswith(PRICE_PREFIX)
    (short,), (was_cut,) = encode(tokenizer, [test_prompt("A red kettle")], limit)
    assert not was_cut and tokenizer.decode(short) == test_prompt("A red kettle")


def test_eval_size_all_works_in_train_as_in_eval(tmp_path):
    import yaml

    shown = assert_ok(pricer("train", "-d", AMAZON_TRAIN, "-o", tmp_path / "run", "--eval-size",
                             "all", "--test", AMAZON_TEST, "--print-config")).stdout
    config = yaml.safe_load(shown)
    assert config["eval_size"] is None and config["eval_data"] == str(AMAZON_TEST)
    assert config["data"] == str(AMAZON_TRAIN) and config["out"] == str(tmp_path / "run")
    assert_bad_input(pricer("train", "-d", AMAZON_TRAIN, "--eval-size", "lots", "--print-config"),
                     "eval_size", "whole number or all")
