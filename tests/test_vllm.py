"""The vllm predictor (predict/vllm.py). vLLM is not installable here (no CUDA): these tests
check the missing case and OUR side of the contract with a small fake `vllm` module that records
what pricer asks of it. Whether real vLLM gives the greedy predictor's prices is a GPU check
(docs/vllm.md), not run here."""

import json
import sys
import types

import pytest
from safetensors.torch import save_file

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST
from pricer.data.prompts import PRICE_PREFIX
from pricer.data.prompts import test_prompt as make_prompt

PROMPTS = [make_prompt(t) for t in ("USB cable, 2 m", "Cordless drill with two batteries", "")]


class FakeVLLM:
    """vllm's offline API as pricer uses it (LLM, SamplingParams, LoRARequest), recording calls;
    the "model" answers the scripted texts in turn."""

    def __init__(self, answers):
        self.answers, self.engines, self.generated = list(answers), [], []
        fake = self

        class LLM:
            def __init__(self, **kwargs):
                from transformers import AutoTokenizer

                fake.engines.append(kwargs)
                self.tokenizer = AutoTokenizer.from_pretrained(kwargs["tokenizer"])

            def get_tokenizer(self):
                return self.tokenizer

            def generate(self, requests, sampling_params, lora_request=None, use_tqdm=True):
                fake.generated.append({"requests": requests, "sampling": sampling_params,
                                       "lora": lora_request})
                texts = [fake.answers[i % len(fake.answers)] for i in range(len(requests))]
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=t)])
                        for t in texts]

        class SamplingParams:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

        class LoRARequest:
            def __init__(self, lora_name, lora_int_id, lora_path):
                self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

        self.modules = {"vllm": types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams),
                        "vllm.lora": types.SimpleNamespace(),
                        "vllm.lora.request": types.SimpleNamespace(LoRARequest=LoRARequest)}


@pytest.fixture
def fake_vllm(monkeypatch):
    fake = FakeVLLM(["42.50 and so on", " 1,299", " no idea"])
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def adapter(tmp_path):
    """An adapter folder as `pricer train` writes it (rank 64), weights not read by the fake."""
    import torch

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 64, "lora_alpha": 128,
                                                            "peft_type": "LORA"}))
    save_file({"x": torch.zeros(1)}, folder / "adapter_model.safetensors")
    return folder


def test_without_vllm_the_predictor_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # an import of vllm fails, installed or not
    line = assert_bad_input(pricer("eval", "--predictor", "vllm", "--data", AMAZON_TEST,
                                   "--eval-size", "2", "--results", tmp_path),
                            "pip install vllm on a CUDA machine")
    assert "vllm predictor needs vLLM" in line
    assert not any(tmp_path.iterdir())  # nothing was written


def test_our_side_of_the_vllm_contract_with_an_adapter(fake_vllm, tiny_llama, adapter):
    """Checks only what pricer asks of vLLM (a fake records it): LoRA enabled with a rank that
    holds the adapter's, the adapter's folder in the LoRARequest, greedy sampling of greedy's
    number of tokens, greedy's token ids per prompt; and the prices read by greedy's rule."""
    from pricer.models.load import load_model
    from pricer.predict.llm import LLMPredictor
    from pricer.predict.registry import make_predictor

    p = make_predictor("vllm", model=str(tiny_llama), adapter=str(adapter))
    details = p.predict_details(PROMPTS)
    [engine] = fake_vllm.engines
    assert engine["model"] == engine["tokenizer"] == str(tiny_llama)
    assert engine["enable_lora"] is True and engine["max_lora_rank"] == 64
    assert engine["max_loras"] == 1 and engine["dtype"] == "auto"
    [call] = fake_vllm.generated
    assert call["lora"].lora_path == str(adapter) and call["lora"].lora_int_id == 1
    assert call["sampling"].kwargs == {"temperature": 0, "max_tokens": 8}  # SmolLM2: digit by digit
    model, tokenizer = load_model(str(tiny_llama), precision="fp32", device="cpu")
    greedy = LLMPredictor(model, tokenizer, "greedy")
    assert greedy.max_new_tokens == p.max_new_tokens
    ids, _ = greedy.encode(PROMPTS)
    assert [r["prompt_token_ids"] for r in call["requests"]] == ids
    assert [d["price"] for d in details] == [42.5, 1299.0, None]
    assert details[2]["reason"] == "no number in the output ' no idea'"
    assert p.predict(PROMPTS[:1]) == [42.5]
    assert p.settings()["adapter"] == str(adapter) and p.settings()["engine"] == "vllm"


def test_the_adapters_prompt_format_is_sent_as_greedy_sends_it(fake_vllm, tiny_llama, adapter):
    """An adapter trained with the 2025 format gets 2025 prompts (its run's train_config.yaml),
    the same token ids as greedy's for that adapter; an explicit prompt_format wins."""
    from pricer.data.prompts import FORMATS
    from pricer.models.load import load_model
    from pricer.predict.llm import LLMPredictor
    from pricer.predict.registry import make_predictor

    (adapter / "train_config.yaml").write_text("prompt_format: '2025'\n")
    p = make_predictor("vllm", model=str(tiny_llama), adapter=str(adapter))
    p.predict(PROMPTS[:1])
    sent = fake_vllm.generated[-1]["requests"][0]["prompt_token_ids"]
    assert p.settings()["prompt_format"] == "2025"
    assert FORMATS["2025"].question in p.tokenizer.decode(sent)
    model, tokenizer = load_model(str(tiny_llama), precision="fp32", device="cpu")
    greedy = LLMPredictor(model, tokenizer, "greedy", prompt_format="2025")
    ids, _ = greedy.encode(PROMPTS[:1])
    assert sent == ids[0]
    forced = make_predictor("vllm", model=str(tiny_llama), adapter=str(adapter), prompt_format="2024")
    assert forced.settings()["prompt_format"] == "2024"


def test_merged_model_runs_without_lora_and_long_prompts_keep_the_question(fake_vllm, tiny_llama):
    from pricer.predict.registry import make_predictor

    p = make_predictor("vllm", model=str(tiny_llama), precision="4bit", max_model_len=64,
                       max_new_tokens=5)
    long = make_prompt("cable " * 500)
    p.predict([long])
    [engine] = fake_vllm.engines
    assert "enable_lora" not in engine and engine["quantization"] == "bitsandbytes"
    assert engine["dtype"] == "bfloat16" and engine["max_model_len"] == 64
    [call] = fake_vllm.generated
    assert call["lora"] is None and call["sampling"].kwargs["max_tokens"] == 5
    [ids] = [r["prompt_token_ids"] for r in call["requests"]]
    assert len(ids) == 64 - 5  # fits the context with room for the answer
    assert p.tokenizer.decode(ids).endswith(PRICE_PREFIX)
    assert ids[0] == p.tokenizer(long)["input_ids"][0]  # the head is kept too


def test_eval_with_vllm_through_the_cli(fake_vllm, tiny_llama, adapter, tmp_path):
    result = json.loads(assert_ok(pricer(
        "eval", "--predictor", "vllm", "--model", tiny_llama, "--adapter", adapter,
        "--data", AMAZON_TEST, "--eval-size", "3", "--results", tmp_path, "--json")).stdout)
    assert result["n"] == 3 and result["settings"]["engine"] == "vllm"
    assert len(fake_vllm.generated) == 1  # one engine call for the whole batch
    assert_bad_input(pricer("eval", "--predictor", "vllm", "--model", tiny_llama, "--precision",
                            "8bit", "--data", AMAZON_TEST, "--eval-size", "3", "--results",
                            tmp_path), "precision 8bit")
