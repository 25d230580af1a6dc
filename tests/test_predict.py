"""Prediction (issue 6): extraction rules, the number tree against brute force, batching, the CLI."""

import json
import math

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from pricer.data.prompts import test_prompt as make_prompt
from pricer.errors import PricerError
from pricer.predict.extract import extract_price

PROMPTS = [make_prompt(t) for t in (
    "Steel garden hose reel, 100 ft",
    "USB cable",
    "Cordless drill with two batteries, charger and a hard case; 20 V, 1/2 inch chuck, LED light",
    "",
    "Acoustic guitar strings, medium gauge, pack of 3 sets for steel-string guitars",
)]


# ---- extraction: the reference's rules (price-is-right.md, section 6) ----
@pytest.mark.parametrize("text, price", [
    ("Price is $1,299.99", 1299.99),      # "," dropped
    ("Price is $12.", 12.0),              # "12." : \d*\.\d+ needs a digit after the dot -> 12
    ("Price is $-5", 5.0),                # the sign only belongs to the \d*\.\d+ branch...
    ("Price is $-5.5", -5.5),             # ...so "-5" reads 5 and "-5.5" reads -5.5
    ("Price is $abc", None),              # no digits: the reference's 0 is our None
    ("", None),
    ("Price is $.50 or so", 0.5),
    ("Price is $ about 40 or 50", 40.0),  # first match only
    ("Price is $$99", 99.0),              # "$" dropped
    ("costs 7 dollars", 7.0),             # no prefix: the whole text
    ("item 3\n\nPrice is $12.5.7", 12.5),  # text after the prefix only; first match
    ("Price is $1,2,3", 123.0),
    ("Price is $4\n\nPrice is $9", 4.0),  # as the reference's split(...)[1]
])
def test_extract_price_reference_rules(text, price):
    assert extract_price(text) == price


# ---- tiny models ----
@pytest.fixture(scope="module")
def peaky_llama(tiny_llama):
    """The random tiny Llama with sharp (non-uniform) next-token distributions, fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    with torch.no_grad():
        model.model.norm.weight.mul_(40.0)
    return model, AutoTokenizer.from_pretrained(tiny_llama)


def bigram_model(tok, table: dict, path):
    """A 1-layer Llama whose attention and MLP write nothing, so the next token depends only on
    the current one: `table` {token: {next token: probability}}, saved with `tok` to `path`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=False, rms_norm_eps=1e-10,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    ids = {s: tok(s, add_special_tokens=False)["input_ids"][0]
           for s in {*table, *(n for nxt in table.values() for n in nxt)}}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.norm.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
        model.model.embed_tokens.weight.normal_(0, 0.02)  # other tokens: some context, no numbers
        for k, (src, nxt) in enumerate(table.items()):
            model.model.embed_tokens.weight[ids[src]] = 0
            model.model.embed_tokens.weight[ids[src], k] = 1.0  # RMSNorm makes it 8 * e_k
            for s, p in nxt.items():  # logit = log p + 40: other tokens (logit ~0) get ~1e-13
                model.lm_head.weight[ids[s], k] = (math.log(p) + 40) / 8
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bigram_llama(tmp_path_factory, default_model_dir):
    """After " $" it writes "4" (p=.7) or "1" (.3); after "4": "2" (.6) or "\\n" (.4); after "2"
    or "1": "\\n". So greedy says 42, and the number distribution is {42: .42, 4: .28, 1: .30}."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    table = {" $": {"4": 0.7, "1": 0.3}, "4": {"2": 0.6, "\n": 0.4}, "2": {"\n": 1.0},
             "1": {"\n": 1.0}, "\n": {"\n": 1.0}}
    return bigram_model(tok, table, tmp_path_factory.mktemp("bigram-llama"))


@pytest.fixture(scope="module")
def whole_price_llama(tmp_path_factory, default_model_dir):
    """A tokenizer with whole prices as single tokens (as Llama 3's "100", "300"), and a model
    that, after " $", writes "100" (p=.5), "Hello" (.3, not a number) or "300" (.2)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    tok.add_tokens(["100", "300", "999"])
    table = {" $": {"100": 0.5, "Hello": 0.3, "300": 0.2}}
    return bigram_model(tok, table, tmp_path_factory.mktemp("whole-price-llama"))


def brute_force(model, tok, prompt, max_int=2, max_dec=1):
    """Every number of the grammar D{1,max_int} ("." D{0,max_dec})? with its probability, the
    conditional distributions from full forward passes (no cache, no padding: all prefixes of a
    level have the same length, so each level is one plain batch)."""
    import torch

    digits = [tok(str(d), add_special_tokens=False)["input_ids"][0] for d in range(10)]
    dot = tok(".", add_special_tokens=False)["input_ids"][0]
    ids = tok(prompt)["input_ids"]
    leaves = []
    # open prefixes: (suffix tokens, text, probability, in decimals, integer digits, decimals)
    level = [([], "", 1.0, False, 0, 0)]
    while level:
        with torch.no_grad():
            logits = model(torch.tensor([ids + s[0] for s in level])).logits[:, -1].float()
        dists = torch.log_softmax(logits, -1).double().exp()
        following = []
        for (suffix, text, p, in_dec, n_int, n_dec), d in zip(level, dists):
            p_digits = d[digits].sum().item()
            if suffix:
                end = 1 - p_digits if in_dec else 1 - p_digits - d[dot].item()
                leaves.append((float(text), p * end))
            children = []
            if in_dec or n_int < max_int:
                children += [(t, str(k), in_dec, n_int + (not in_dec), n_dec + in_dec)
                             for k, t in enumerate(digits)]
            if not in_dec and n_int > 0:
                children.append((dot, ".", True, n_int, 0))
            for t, char, c_dec, c_int, c_decs in children:
                child = (suffix + [t], text + char, p * d[t].item(), c_dec, c_int, c_decs)
                if c_dec and c_decs == max_dec:
                    leaves.append((float(child[1]), child[2]))  # further decimals: folded in
                else:
                    following.append(child)
        level = following
    mass = sum(p for _, p in leaves)
    mean = sum(v * p for v, p in leaves) / mass
    leaves.sort()
    cum, p50 = 0.0, None
    for v, p in leaves:
        cum += p / mass
        if cum >= 0.5 - 1e-12:
            p50 = v
            break
    return mean, mass, p50


def test_expected_equals_brute_force_enumeration(peaky_llama):
    from pricer.predict.llm import LLMPredictor

    model, tok = peaky_llama
    predictor = LLMPredictor(model, tok, "expected", batch_size=2, branches=10_000,
                             max_int_digits=2, max_decimals=1, min_prob=0.0)
    prompts = PROMPTS[:2]
    got = predictor.predict_details(prompts)
    for prompt, result in zip(prompts, got):
        mean, mass, p50 = brute_force(model, tok, prompt)
        assert result["price"] == pytest.approx(mean, rel=1e-4)
        assert result["mass"] == pytest.approx(mass, rel=1e-3)
        assert result["p50"] == pytest.approx(p50)
        assert result["p10"] <= result["p50"] <= result["p90"]


def test_expected_on_a_known_distribution(bigram_llama):
    from pricer.predict.llm import load_llm_predictor

    predictor = load_llm_predictor("expected", model=str(bigram_llama), precision="fp32", device="cpu")
    result = predictor.predict_details(PROMPTS[:1])[0]
    assert result["price"] == pytest.approx(42 * 0.42 + 4 * 0.28 + 1 * 0.30, rel=1e-5)
    assert (result["p10"], result["p50"], result["p90"]) == (1.0, 4.0, 42.0)
    assert result["mass"] == pytest.approx(1.0, abs=1e-6)
    greedy = load_llm_predictor("greedy", model=str(bigram_llama), precision="fp32", device="cpu")
    assert greedy.predict(PROMPTS[:2]) == [42.0, 42.0]


def test_batched_and_one_by_one_agree(peaky_llama):
    from pricer.predict.llm import LLMPredictor

    model, tok = peaky_llama
    for method in ("greedy", "expected"):
        batched = LLMPredictor(model, tok, method, batch_size=len(PROMPTS)).predict_details(PROMPTS)
        single = LLMPredictor(model, tok, method, batch_size=1).predict_details(PROMPTS)
        for b, s in zip(batched, single):
            if method == "greedy":
                assert b["text"] == s["text"]
            else:
                assert b["price"] == pytest.approx(s["price"], rel=1e-4)
                assert b["mass"] == pytest.approx(s["mass"], rel=1e-3)


def test_greedy_stops_once_every_number_is_finished(bigram_llama):
    """The batch stops after "42\\n" (3 tokens), not after max_new_tokens."""
    from pricer.predict.llm import load_llm_predictor

    predictor = load_llm_predictor("greedy", model=str(bigram_llama), precision="fp32",
                                   device="cpu", max_new_tokens=50)
    steps = []
    step = predictor._step
    predictor._step = lambda *a: steps.append(1) or step(*a)
    result = predictor.predict_details(PROMPTS[:3])
    assert [r["text"] for r in result] == ["42\n"] * 3
    assert len(steps) == 2  # prefill gives "4", two steps give "2" and "\n"


def test_topk_refuses_digit_tokenizers(peaky_llama):
    from pricer.predict.llm import LLMPredictor

    model, tok = peaky_llama
    with pytest.raises(PricerError, match="expected"):
        LLMPredictor(model, tok, "topk")


def test_topk_reference_weighting(whole_price_llama):
    """The reference's weighted top-3: numbers among the 3 most probable tokens, weighted by
    their probability; the non-number ("Hello") is left out."""
    from pricer.predict.llm import load_llm_predictor

    predictor = load_llm_predictor("topk", model=str(whole_price_llama), precision="fp32",
                                   device="cpu")
    got = predictor.predict_details(PROMPTS[:2])
    for result in got:
        assert result["price"] == pytest.approx((100 * 0.5 + 300 * 0.2) / 0.7, rel=1e-4)
        assert result["p_numbers"] == pytest.approx(0.7, rel=1e-4)


def test_8bit_cast_notes_are_silenced(caplog):
    """bitsandbytes logs "MatMul8bitLt: inputs will be cast..." once per layer and forward pass
    (1,260 lines for one 8-bit prediction); the filter installed for 8-bit inference drops
    exactly those, and lets anything else through."""
    import logging

    from pricer.predict.llm import quiet_8bit

    log = logging.getLogger("bitsandbytes.autograd._functions")
    quiet_8bit()
    quiet_8bit()  # installed once, however many predictors are built
    # the logger's own level: other tests quieten the parent "bitsandbytes" logger to ERROR
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(3):
            log.warning("MatMul8bitLt: inputs will be cast from %s to float16 during quantization",
                        "torch.bfloat16")
        log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    assert len(log.filters) == 1


class RecordingTokenizer:
    """A tokenizer that notes every text it is asked to encode (and otherwise is the real one)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

    def __call__(self, text, *args, **kwargs):
        self.seen.extend([text] if isinstance(text, str) else text)
        return self.tokenizer(text, *args, **kwargs)

    def __len__(self):
        return len(self.tokenizer)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_huge_description_is_cut_before_tokenising(tiny_llama):
    """A 5 MB description: the tokenizer sees a bounded text (the model's context worth of
    characters), and the prediction says it was cut."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pricer.data.prompts import CHARS_PER_TOKEN
    from pricer.predict.llm import LLMPredictor

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    tok = RecordingTokenizer(AutoTokenizer.from_pretrained(tiny_llama))
    predictor = LLMPredictor(model, tok, "greedy", max_new_tokens=2)
    huge = make_prompt("Garden hose " + "very long text " * 350_000)
    assert len(huge) > 5_000_000
    tok.seen.clear()
    result = predictor.predict_details([huge, PROMPTS[1]])
    bound = model.config.max_position_embeddings * CHARS_PER_TOKEN
    assert tok.seen and max(len(t) for t in tok.seen) <= bound
    assert result[0]["truncated"] and not result[1]["truncated"]
    assert any(t.endswith("Price is $") and t.startswith(huge[:100]) for t in tok.seen)


# ---- the CLI ----
def run_cli(args, stdin=None):
    return pricer("predict", *args, input=stdin)


def test_cli_single_item_and_stdin(bigram_llama):
    model = ["--model", str(bigram_llama), "--precision", "fp32", "--device", "cpu"]
    result = assert_ok(run_cli([*model, "Steel garden hose reel"]))
    assert "$42.00" in result.stdout
    result = assert_ok(run_cli([*model, "--predictor", "expected"], stdin="A USB cable\n"))
    assert "$19.06" in result.stdout and "10-90 %: $1.00 - $42.00" in result.stdout


def test_cli_file_mode_with_bad_rows(bigram_llama, tmp_path):
    source = tmp_path / "items.jsonl"
    source.write_text("\n".join([
        json.dumps({"id": "a", "text": "Steel garden hose reel", "price": 30}),
        "{not json",
        json.dumps({"id": "b", "title": "no text"}),
        json.dumps({"id": "c", "text": ""}),
        json.dumps({"id": "d", "text": "huge " * 3000}),
        json.dumps(["a list"]),
        json.dumps({"text": 12}),
        json.dumps({"id": "e", "text": "USB cable"}),
    ]) + "\n")
    output = tmp_path / "out.jsonl"
    result = assert_ok(run_cli(["--model", bigram_llama, "--precision", "fp32", "--device", "cpu",
                                "--predictor", "expected", "--input", source, "--output", output]))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "c", "d", "e"]
    assert all(r["price"] == pytest.approx(19.06) and r["p90"] == 42.0 for r in rows)
    assert rows[1]["empty"] and rows[2]["truncated"] and "truncated" not in rows[0]
    for line in (2, 3, 6, 7):
        assert f"line {line}:" in result.stdout + result.stderr


def test_cli_csv_and_no_price(tiny_llama, tmp_path):
    """A random model writes no number: the items get price null and a reason, no crash."""
    source = tmp_path / "items.csv"
    source.write_text('id,text\n1,"Steel hose reel"\n2,"Drill, cordless",extra\n3,USB cable\n')
    output = tmp_path / "out.jsonl"
    result = assert_ok(run_cli(["--model", tiny_llama, "--device", "cpu", "--max-new-tokens", "3",
                                "--input", source, "--output", output]))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "3"]
    assert "line 3:" in result.stdout + result.stderr
    for r in rows:
        assert (r["price"] is None) == ("reason" in r)


def test_cli_bad_input_is_one_clear_error(tiny_llama, tmp_path):
    assert_bad_input(run_cli(["--model", tiny_llama, "--predictor", "nope", "x"]), "unknown predictor")
    assert_bad_input(run_cli(["--model", tiny_llama, "--input", tmp_path / "missing.jsonl",
                              "--output", tmp_path / "o.jsonl"]), "no such file")
    assert_bad_input(run_cli(["--model", tiny_llama, "--predictor", "topk", "x"]), "expected")


def write_items(folder):
    """The same three items as a Parquet file and as a saved data set (train and test splits)."""
    import pandas as pd
    from datasets import Dataset, DatasetDict

    rows = {"id": ["p1", "p2", "p3"], "text": ["Steel garden hose reel", "USB cable", "Drill"],
            "price": [30.0, 9.0, 80.0], "category": ["Tools"] * 3}
    pd.DataFrame(rows).to_parquet(folder / "items.parquet")
    split = Dataset.from_dict({k: rows[k] for k in ("text", "price", "category")})
    DatasetDict({"train": split, "test": split}).save_to_disk(str(folder / "saved"))
    return folder / "items.parquet", folder / "saved"


def test_cli_parquet_and_saved_data_set_input(bigram_llama, tmp_path):
    parquet, saved = write_items(tmp_path)
    model = ["--model", bigram_llama, "--precision", "fp32", "--device", "cpu"]
    for source, ids in ((parquet, ["p1", "p2", "p3"]), (saved, None)):
        output = tmp_path / f"{source.stem}.jsonl"
        assert_ok(run_cli([*model, "--input", source, "--output", output]))
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert [r["price"] for r in rows] == [42.0, 42.0, 42.0]
        if ids:
            assert [r["id"] for r in rows] == ids
        else:
            assert len({r["id"] for r in rows}) == 3


# ---- any predictor of the registry, made as pricer eval makes it ----
@pytest.fixture(scope="module")
def small_train(tmp_path_factory):
    from conftest import AMAZON_TRAIN

    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    path.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:300]) + "\n")
    return path


def test_cli_prices_with_any_predictor_and_opt(small_train, tmp_path):
    assert "$123.00" in assert_ok(run_cli(["--predictor", "constant", "--opt", "value=123",
                                           "some item"])).stdout
    assert "$77.50" in assert_ok(run_cli(["--predictor", "constant", "--value", "77.5", "x"])).stdout
    mean = sum(json.loads(line)["price"] for line in small_train.read_text().splitlines()) / 300
    fitted = assert_ok(run_cli(["--predictor", "constant", "--train", small_train, "x"]))
    assert f"${mean:,.2f}" in fitted.stdout  # learnt from --train, as in pricer eval
    from pricer.data.prompts import as_test_prompt
    from pricer.predict.registry import make_predictor

    text = "Cordless drill with two batteries, charger and a hard case; 20 V"
    lr = assert_ok(run_cli(["--predictor", "features-lr", "--train", small_train, text]))
    rows = [json.loads(line) for line in small_train.read_text().splitlines()]
    direct = make_predictor("features-lr").fit([as_test_prompt(r["text"]) for r in rows],
                                               [r["price"] for r in rows])
    assert f"${direct.predict([as_test_prompt(text)])[0]:,.2f}" in lr.stdout
    source, output = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": f"item {i}"}) + "\n" for i in range(40)))
    assert_ok(run_cli(["--predictor", "constant", "--opt", "value=9", "--input", source,
                       "--output", output]))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(40)] and {r["price"] for r in rows} == {9.0}


def test_cli_refuses_what_a_predictor_cannot_take():
    assert_bad_input(run_cli(["--predictor", "bow-lr", "x"]), "fitted", "--train")
    assert_bad_input(run_cli(["--predictor", "constant", "--opt", "value=1", "--branches", "4",
                              "x"]), "no option branches")
    assert_bad_input(run_cli(["--predictor", "greedy", "--branches", "4", "x"]), "for expected")
    assert_bad_input(run_cli(["--predictor", "constant", "--opt", "value", "x"]), "key=value")
