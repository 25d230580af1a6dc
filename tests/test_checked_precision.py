"""The "checked" precision (issue 19, part 1): bf16 decides, every greedy decision closer than the
check margin is recomputed in fp32, and the answers are the reference's per-item fp32 loop's, on
an adapter trained in the test."""

import json

import pytest
import torch

from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.data.prompts import PRICE_PREFIX
from pricer.predict.extract import extract_price


@pytest.fixture(scope="module")
def adapter(tiny_llama, tmp_path_factory):
    """A LoRA adapter on the tiny Llama, trained 4 steps on 24 real train items."""
    from pricer.train.config import load_config
    from pricer.train.run import train

    folder = tmp_path_factory.mktemp("checked")
    data = folder / "train.jsonl"
    data.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:24]) + "\n")
    return str(train(load_config(None, dict(
        model=str(tiny_llama), data=str(data), out=str(folder / "run"), max_steps=4,
        batch_size=4, save_steps=100, logging_steps=1, report_to="none", eval=False,
        learning_rate=1e-2, max_length=96))))


def reference_loop(predictor, items) -> list:
    """The reference's model_predict on pricer's token ids: one item at a time, `generate`, fp32."""
    rows, _ = predictor.encode(items)
    prices = []
    for ids in rows:
        inputs = torch.tensor([ids])
        with torch.inference_mode():
            out = predictor.model.generate(inputs, attention_mask=torch.ones_like(inputs),
                                           max_new_tokens=predictor.max_new_tokens,
                                           do_sample=False,
                                           pad_token_id=predictor.tokenizer.pad_token_id)
        prices.append(extract_price(PRICE_PREFIX + predictor.tokenizer.decode(out[0, len(ids):])))
    return prices


def test_checked_greedy_gives_the_fp32_loops_answers(tiny_llama, adapter):
    from pricer.models.precision import precision_of
    from pricer.predict.llm import load_llm_predictor

    items = read_items(AMAZON_TEST)[:16]
    exact = load_llm_predictor("greedy", model=str(tiny_llama), adapter=adapter, precision="fp32")
    checked = load_llm_predictor("greedy", model=str(tiny_llama), adapter=adapter,
                                 precision="checked", batch_size=5)
    assert precision_of(checked.model) == "bf16" and precision_of(checked.exact_model) == "fp32"
    assert checked.settings()["precision"] == "checked"
    reference = reference_loop(exact, items)
    twin = sorted(r["margin"] for r in checked._batched(checked.encode(items)[0]))
    # a margin that sends half the items to fp32 and keeps half: both branches are exercised
    checked.check_margin = twin[len(twin) // 2]
    # the break-even share is measured from timings; pinned here, so that a loaded machine's
    # timings cannot send everything to fp32 (the answers would be the same, the counts not)
    checked.break_even = lambda: 1.0
    details = checked.predict_details(items)
    assert 0 < sum(bool(d.get("checked")) for d in details) < len(items)
    assert [d["price"] for d in details] == reference
    checked.check_margin = float("inf")  # every item recomputed: fp32's answers by construction
    assert checked.predict(items) == reference
    # once most answers (of >= 32) were close calls, fp32 alone answers: no bf16 pass at all
    checked.break_even = lambda: 0.4  # CHECK_BREAK_EVEN, whatever the timings measured
    assert checked.close_share() > 0.4
    bf16_calls = []
    checked.model.register_forward_hook(lambda *args: bf16_calls.append(1))
    details = checked.predict_details(items)
    assert [d["price"] for d in details] == reference
    assert not bf16_calls and not any(d.get("checked") for d in details)


def test_auto_is_checked_only_for_greedy_on_a_fast_bf16_cpu(tiny_llama, monkeypatch):
    from pricer.models import precision
    from pricer.predict.llm import load_llm_predictor

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    greedy = load_llm_predictor("greedy", model=str(tiny_llama), device="cpu")
    expected = load_llm_predictor("expected", model=str(tiny_llama), device="cpu")
    assert greedy.settings()["precision"] == "checked" and greedy.exact_model is not None
    assert expected.settings()["precision"] == "bf16" and expected.exact_model is None
    named = load_llm_predictor("expected", model=str(tiny_llama), device="cpu", precision="checked")
    assert named.settings()["precision"] == "fp32"  # checked stands for fp32's answers
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert load_llm_predictor("greedy", model=str(tiny_llama)).settings()["precision"] == "fp32"


def test_the_margin_is_the_closest_decision_of_the_answer(tiny_llama):
    """greedy reports, per item, the smallest top-1 minus top-2 log-prob over its new tokens."""
    from pricer.predict.llm import load_llm_predictor

    p = load_llm_predictor("greedy", model=str(tiny_llama), precision="fp32", max_new_tokens=3)
    item = read_items(AMAZON_TEST)[:1]
    ids = torch.tensor(p.encode(item)[0])
    margins = []
    with torch.inference_mode():
        for _ in range(3):
            logp = torch.log_softmax(p.model(ids).logits[0, -1].float(), -1)
            top = logp.topk(2).values
            margins.append(float(top[0] - top[1]))
            ids = torch.cat([ids, logp.argmax()[None, None]], dim=1)
    detail = p.predict_details(item)[0]
    # the closest decision among the tokens it wrote (it may stop early, once the number ends)
    assert any(detail["margin"] == pytest.approx(min(margins[:k]), abs=1e-4) for k in (1, 2, 3))
    json.dumps(detail)  # the details stay JSON (pricer predict --out writes them)


def test_the_break_even_comes_from_both_models_timings(tiny_llama):
    """1 - bf16 s/item / fp32 s/item once both priced 16 items; CHECK_BREAK_EVEN before."""
    from pricer.predict.llm import CHECK_BREAK_EVEN, load_llm_predictor

    checked = load_llm_predictor("greedy", model=str(tiny_llama), precision="checked")
    assert checked.break_even() == CHECK_BREAK_EVEN
    checked._seconds = {"fast": [4.0, 16], "exact": [10.0, 15]}
    assert checked.break_even() == CHECK_BREAK_EVEN  # fp32 has priced only 15
    checked._seconds = {"fast": [4.0, 16], "exact": [10.0, 16]}
    assert checked.break_even() == pytest.approx(0.6)
