"""Prediction on the real default model (SmolLM2-135M): faithful to the reference, batch-invariant."""

import json

import pytest

from conftest import AMAZON_TEST
from pricer.data.prompts import test_prompt as make_prompt
from pricer.predict.extract import extract_price


@pytest.mark.slow
def test_greedy_matches_the_reference_loop_batched_and_one_by_one(default_model_dir):
    import torch
    from transformers import set_seed

    from pricer.predict.llm import load_llm_predictor

    with open(AMAZON_TEST) as f:
        prompts = [make_prompt(json.loads(next(f))["text"]) for _ in range(2)]
    batched = load_llm_predictor("greedy", precision="fp32", device="cpu", batch_size=2)
    model, tok = batched.model, batched.tokenizer
    reference = []  # the reference's model_predict, item by item
    for prompt in prompts:
        set_seed(42)
        inputs = tok.encode(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=8,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        reference.append(extract_price(tok.decode(out[0])))
    assert all(p is not None for p in reference)
    assert batched.predict(prompts) == reference
    batched.batch_size = 1
    assert batched.predict(prompts) == reference
