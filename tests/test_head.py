"""`--head regression`: LoRA + an MLP on the last token's hidden states, trained on log price;
the `head` predictor reads it. On a tiny Llama (real SmolLM2 tokenizer) and real Amazon items."""

import json
import math

import numpy as np
import pytest
from safetensors.torch import load_file

from clirun import assert_bad_input, assert_ok, pricer

DATA = "../shared/data/amazon-pricer"


@pytest.fixture(scope="module")
def items_file(tmp_path_factory):
    rows = [json.loads(line) for line in open(f"{DATA}/train.jsonl")][:24]
    path = tmp_path_factory.mktemp("head") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def head_run(tmp_path_factory, tiny_llama, items_file):
    """A regression-head run: 3 epochs over 24 real items, LoRA on the top layer only."""
    out = tmp_path_factory.mktemp("run") / "head"
    from transformers import LlamaForCausalLM

    calls = []
    original = LlamaForCausalLM.forward
    # the causal LM's own forward (which applies lm_head) must never run in head training
    LlamaForCausalLM.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        result = pricer("train", "--model", str(tiny_llama), "--data", str(items_file),
                        "--out", str(out), "--head", "regression", "--lora-layers", "1",
                        "--head-layers", "2", "--max-length", "64", "--batch-size", "8",
                        "--epochs", "6", "--learning-rate", "5e-3", "--head-learning-rate",
                        "1e-2", "--lr-scheduler", "constant", "--warmup-ratio", "0",
                        "--logging-steps", "1", "--report-to", "none", "--no-eval")
    finally:
        LlamaForCausalLM.forward = original
    assert_ok(result)
    return out, calls


def test_head_training_loss_falls_and_never_projects_the_vocabulary(head_run):
    out, causal_lm_forwards = head_run
    card = json.loads((out / "run_card.json").read_text())
    losses = card["losses"]
    assert len(losses) == 18
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses
    assert causal_lm_forwards == []  # only the decoder ran: no logits, no vocabulary projection
    saved = json.loads((out / "head_config.json").read_text())
    assert saved["head_layers"] == 2 and saved["max_length"] == 64
    prices = [json.loads(line)["price"] for line in open(f"{DATA}/train.jsonl")][:24]
    assert saved["log_mean"] == pytest.approx(np.log1p(prices).mean())
    head = load_file(str(out / "head.safetensors"))
    assert head["net.1.weight"].shape == (256, 2 * 2 * 64)  # 2 layers x (last, mean) x hidden 64


def test_lora_only_on_the_top_layers(head_run):
    out, _ = head_run
    keys = load_file(str(out / "adapter_model.safetensors")).keys()
    layers = {int(k.split(".layers.")[1].split(".")[0]) for k in keys}
    assert layers == {1}  # the tiny Llama has layers 0 and 1; --lora-layers 1


def test_head_predictor_prices_real_items_finite_and_positive(head_run, tiny_llama):
    from pricer.predict.registry import make_predictor

    out, _ = head_run
    predictor = make_predictor("head", model=str(tiny_llama), adapter=str(out))
    texts = [json.loads(line)["text"] for line in open(f"{DATA}/test.jsonl")][:10]
    from pricer.data.prompts import test_prompt

    prices = predictor.predict([test_prompt(t) for t in texts])
    assert len(prices) == 10 and all(math.isfinite(p) and p > 0 for p in prices)
    assert len(set(round(p, 6) for p in prices)) > 1  # it reads the items, not a constant
    # order-independent: batching sorts by length; a single item gets the same price
    alone = predictor.predict([test_prompt(texts[3])])[0]
    assert alone == pytest.approx(prices[3], rel=1e-4)
    assert predictor.settings()["head_layers"] == 2


def test_heads_of_one_base_run_their_shared_bottom_layers_once_with_the_same_prices(
        head_run, tiny_llama, items_file, tmp_path):
    """Two heads with LoRA on the top layer only (of 2) compute the same layer 0: an ensemble
    runs it once per batch for both, and each head's prices are those it gives alone."""
    from pricer.data.prompts import test_prompt
    from pricer.predict.ensemble import EnsemblePredictor
    from pricer.predict.head import predict_heads, shared_groups
    from pricer.predict.registry import make_predictor

    other = tmp_path / "other"
    assert_ok(pricer("train", "--model", str(tiny_llama), "--data", str(items_file), "--out",
                     str(other), "--head", "regression", "--lora-layers", "1", "--head-layers", "1",
                     "--max-length", "64", "--batch-size", "8", "--max-steps", "3", "--seed", "7",
                     "--learning-rate", "5e-3", "--report-to", "none", "--no-eval"))
    first, _ = head_run
    a, b = (make_predictor("head", model=str(tiny_llama), adapter=str(run)) for run in (first, other))
    assert a.base_layers == b.base_layers == 1 and a.bottom_key() == b.bottom_key()
    items = [test_prompt(json.loads(line)["text"]) for line in open(f"{DATA}/test.jsonl")][:40]
    alone = [a.predict(items), b.predict(items)]
    assert alone[0] != alone[1]  # two different heads

    calls = {"a": 0, "b": 0}
    hooks = [p.model.get_decoder().layers[0].register_forward_hook(
        lambda m, i, o, k=k: calls.__setitem__(k, calls[k] + 1)) for k, p in (("a", a), ("b", b))]
    try:
        together = predict_heads([a, b], items)
        blend = EnsemblePredictor([{"predictor": "head"}] * 2, [a, b], [0.6, 0.5], -0.2).predict(items)
    finally:
        for hook in hooks:
            hook.remove()
    batches = -(-len(items) // a.chunk)
    assert calls == {"a": 2 * batches, "b": 0}  # layer 0 ran once per batch, in a's model only
    for shared, own in zip(together, alone):
        assert shared == pytest.approx(own, rel=1e-5)
    expected = np.expm1(-0.2 + 0.6 * np.log1p(alone[0]) + 0.5 * np.log1p(alone[1]))
    assert blend == pytest.approx(expected.tolist(), rel=1e-5)
    assert [len(g) for g in shared_groups([a, "not a head", b])] == [2]
    b.base_layers, b._bottom_key = 0, None  # LoRA on every layer: nothing to share
    assert shared_groups([a, b]) == []


def test_head_run_evaluates_with_pricer_eval(head_run, tiny_llama, tmp_path):
    out, _ = head_run
    result = pricer("eval", "--predictor", "head", "--model", str(tiny_llama), "--adapter", str(out),
                    "--data", f"{DATA}/test.jsonl", "--eval-size", "5", "--results", str(tmp_path),
                    "--json")
    assert_ok(result)
    scored = json.loads(result.stdout)
    assert scored["n"] == 5 and scored["error"] > 0


def test_pricer_predict_prices_with_the_head(head_run, tiny_llama):
    out, _ = head_run
    text = json.loads(open(f"{DATA}/test.jsonl").readline())["text"]
    result = assert_ok(pricer("predict", "--predictor", "head", "--model", str(tiny_llama),
                              "--adapter", str(out), text))
    from pricer.data.prompts import test_prompt
    from pricer.predict.registry import make_predictor

    direct = make_predictor("head", model=str(tiny_llama), adapter=str(out)).predict([test_prompt(text)])[0]
    assert result.stdout.strip() == f"${direct:,.2f}"


def test_a_predictor_that_does_not_fit_the_run_is_refused(head_run, tiny_llama, items_file, tmp_path):
    """Greedy/topk/expected on a head run (LoRA weights never trained to write a price), and
    head on a plain LoRA run (no head): one line each, before the model loads."""
    out, _ = head_run
    for method in ("greedy", "topk", "expected"):
        assert_bad_input(pricer("predict", "--predictor", method, "--model", str(tiny_llama),
                                "--adapter", str(out), "x"), "--head regression", "--predictor head")
    assert_bad_input(pricer("eval", "--predictor", "greedy", "--model", str(tiny_llama), "--adapter",
                            str(out), "--data", f"{DATA}/test.jsonl", "--eval-size", "2",
                            "--results", str(tmp_path / "results")), "--predictor head")
    plain = tmp_path / "plain"
    assert_ok(pricer("train", "--model", str(tiny_llama), "--data", str(items_file), "--out",
                     str(plain), "--max-steps", "1", "--batch-size", "2", "--max-length", "64",
                     "--report-to", "none", "--no-eval"))
    assert_bad_input(pricer("predict", "--predictor", "head", "--model", str(tiny_llama),
                            "--adapter", str(plain), "x"), "not a run trained with --head regression")
    # nor is it exported: a GGUF (or a merged folder) would keep the decoder and drop the head
    for what in (("--gguf", "f16"), ("--merge",)):
        assert_bad_input(pricer("export", "--model", str(tiny_llama), "--adapter", str(out),
                                *what, "--out", str(tmp_path / "export")), "regression head")
        assert not (tmp_path / "export").exists()


def test_num_layers_cuts_the_model_and_the_predictor_follows(tiny_llama, items_file, tmp_path):
    out = tmp_path / "cut"
    result = pricer("train", "--model", str(tiny_llama), "--data", str(items_file), "--out",
                    str(out), "--head", "regression", "--num-layers", "1", "--max-steps", "2",
                    "--batch-size", "4", "--max-length", "48", "--report-to", "none",
                    "--eval-data", f"{DATA}/test.jsonl", "--eval-size", "3", "--results",
                    str(tmp_path / "results"))
    assert_ok(result)
    assert json.loads((out / "head_config.json").read_text())["num_layers"] == 1
    card = json.loads((out / "run_card.json").read_text())  # evaluated after training, by `head`
    assert card["evaluation"]["n"] == 3 and card["config"]["eval_predictor"] == "head"
    keys = load_file(str(out / "adapter_model.safetensors")).keys()
    assert {int(k.split(".layers.")[1].split(".")[0]) for k in keys} == {0}
    from pricer.predict.registry import make_predictor

    predictor = make_predictor("head", model=str(tiny_llama), adapter=str(out))
    assert len(predictor.model.get_decoder().layers) == 1
    assert predictor.predict(["A 12-pack of AA batteries"])[0] > 0


def test_band_weights_make_every_price_band_count_the_same():
    from pricer.data.balance import band_weights

    prices = np.array([1, 2, 3, 5, 8, 9, 15, 150, 700.0])
    w = band_weights(prices)
    assert w.mean() == pytest.approx(1.0)
    totals = [w[(prices >= lo) & (prices < hi)].sum() for lo, hi in
              [(0, 10), (10, 25), (100, 200), (400, 1e9)]]
    assert totals == pytest.approx([totals[0]] * 4)


def test_prompt_ids_fit_max_length_and_keep_question_and_prefix(default_model_dir):
    from transformers import AutoTokenizer

    from pricer.data.prompts import PRICE_PREFIX, QUESTION, test_prompt
    from pricer.models.head import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    text = json.loads(open(f"{DATA}/test.jsonl").readline())["text"]
    ids, short = prompt_ids(tokenizer, test_prompt(text), 64)
    decoded = tokenizer.decode(ids)
    assert len(ids) <= 64 and short
    assert decoded.startswith(QUESTION) and decoded.endswith(PRICE_PREFIX)
    long_ids, long_short = prompt_ids(tokenizer, test_prompt(text), 2048)
    assert not long_short and tokenizer.decode(long_ids).count(text.split("\n")[0]) == 1


def test_head_settings_are_checked_before_any_work(tiny_llama, items_file, tmp_path):
    common = ("train", "--model", str(tiny_llama), "--data", str(items_file), "--out",
              str(tmp_path / "x"), "--report-to", "none")
    assert_bad_input(pricer(*common, "--head", "regression", "--eval-predictor", "greedy"),
                     "eval_predictor head")
    assert_bad_input(pricer(*common, "--num-layers", "1"), "--head regression")
    assert_bad_input(pricer(*common, "--head", "linear"), "head must be one of")
    assert_bad_input(pricer(*common, "--head", "regression", "--lora-layers", "5", "--max-steps", "1"),
                     "lora_layers 5")
    assert not (tmp_path / "x").exists()


def test_init_from_starts_a_run_from_another_runs_adapter_and_head(head_run, tiny_llama,
                                                                    items_file, tmp_path):
    """`--init-from RUN`: the new run's model starts with RUN's adapter and head (a further epoch,
    or other weights); weights that do not fit are one line."""
    import torch

    from pricer.train.config import TrainConfig, resolve
    from pricer.train.run import build_data, build_trainer
    from pricer.data.items import read_items
    from pricer.models.load import load_tokenizer

    out, _ = head_run
    config = resolve(TrainConfig(model=str(tiny_llama), data=str(items_file), head="regression",
                                 lora_layers=1, head_layers=2, max_length=64, report_to="none",
                                 init_from=str(out), out=str(tmp_path / "next")), None)
    tokenizer = load_tokenizer(config.model)
    data, stats = build_data(config, read_items(items_file, split="train"), tokenizer)
    model = build_trainer(config, tokenizer, data.dataset, head_stats=stats).model
    saved_head, saved_lora = load_file(str(out / "head.safetensors")), \
        load_file(str(out / "adapter_model.safetensors"))
    for name, value in saved_head.items():
        assert torch.equal(model.head.state_dict()[name], value)
    lora = {k: v for k, v in model.lm.state_dict().items() if "lora_B" in k}
    assert len(lora) == sum("lora_B" in k for k in saved_lora) > 0
    assert all(v.abs().sum() > 0 for v in lora.values())  # a fresh LoRA B is all zeros

    common = ("train", "--model", str(tiny_llama), "--data", str(items_file), "--head",
              "regression", "--lora-layers", "1", "--max-length", "64", "--report-to", "none",
              "--max-steps", "1", "--no-eval", "--init-from", str(out))
    assert_bad_input(pricer(*common, "--out", str(tmp_path / "a"), "--head-layers", "1"),
                     "do not fit this run's settings")
    assert_bad_input(pricer(*common, "--out", str(tmp_path / "b"), "--head-layers", "2",
                            "--lora-r", "4"), "do not fit this run's settings")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_prices_like_weighs_the_items_like_another_files_prices(tiny_llama, items_file, tmp_path):
    from pricer.data.balance import BANDS, prices_like
    from pricer.models.load import load_tokenizer
    from pricer.train.head import build_head_dataset
    from pricer.data.items import read_items

    items = read_items(items_file, split="train")
    like_rows = [json.loads(line) for line in open(f"{DATA}/test.jsonl")][:200]
    like_file = tmp_path / "like.jsonl"
    like_file.write_text("".join(json.dumps(r) + "\n" for r in like_rows))
    like = prices_like(like_file)
    data = build_head_dataset(items, load_tokenizer(str(tiny_llama)), 64, prices_like=like)
    weights = np.array(data.dataset["weights"])
    prices = np.array([i.price for i in items])
    assert weights.mean() == pytest.approx(1.0)
    # each band's share of the weight is its share among the test-like prices, where items have it
    bands, like_bands = np.digitize(prices, BANDS[1:-1]), np.digitize(like, BANDS[1:-1])
    for band in set(bands):
        want = np.mean(like_bands == band)
        assert weights[bands == band].sum() / weights.sum() == pytest.approx(
            want / np.mean(np.isin(like_bands, list(set(bands)))), rel=1e-6)
    common = ("train", "--model", str(tiny_llama), "--data", str(items_file), "--out",
              str(tmp_path / "x"), "--report-to", "none", "--max-steps", "1")
    # the generation path takes item weights too, on its fast path only (tests/test_loss.py)
    assert_bad_input(pricer(*common, "--prices-like", str(like_file), "--fast-path", "false"),
                     "on the fast path only")
    assert_bad_input(pricer(*common, "--head", "regression", "--prices-like", str(like_file),
                            "--balance-prices"), "choose one of")
    assert_bad_input(pricer(*common, "--head", "regression", "--prices-like",
                            str(tmp_path / "none.jsonl")), "none.jsonl")
    assert not (tmp_path / "x").exists()


def test_a_run_names_its_own_predictor_in_every_command(head_run, tiny_llama, tmp_path):
    """`--run DIR` picks the head for a head run, with the run's base model, in predict, eval
    and serve; a predictor that does not fit is refused with one line; `pricer runs` lists it."""
    out, _ = head_run
    text = json.loads(open(f"{DATA}/test.jsonl").readline())["text"]
    by_run = assert_ok(pricer("predict", "--run", str(out), text))
    by_name = assert_ok(pricer("predict", "--predictor", "head", "--model", str(tiny_llama),
                               "--adapter", str(out), text))
    assert by_run.stdout == by_name.stdout and by_run.stdout.startswith("$")
    for method in ("greedy", "expected"):
        assert_bad_input(pricer("predict", "--run", str(out), "--predictor", method, text),
                         "--head regression", "--predictor head")
    assert_bad_input(pricer("predict", "--run", str(out), "--adapter", str(out), text),
                     "--run gives the adapter")
    scored = assert_ok(pricer("eval", "--run", str(out), "--data", f"{DATA}/test.jsonl",
                              "--eval-size", "3", "--results", str(tmp_path / "results"), "--json"))
    assert json.loads(scored.stdout)["predictor"] == "head"
    listed = [json.loads(line) for line in
              assert_ok(pricer("runs", str(out.parent), "--json")).stdout.splitlines()]
    assert [(r["name"], r["holds"], r["steps"], r["base_model"]) for r in listed] == \
        [("head", "head", 18, str(tiny_llama))]
    table = assert_ok(pricer("runs", str(out.parent))).stdout
    assert table.splitlines()[1].split()[:2] == ["head", "head"] and " 18 " in table
    assert_bad_input(pricer("export", "--run", str(out), "--gguf", "f16", "--out",
                            str(tmp_path / "export")), "regression head")
