"""Large-scale greedy prediction on vLLM's offline engine (issue 12 §3; docs/vllm.md).

The same answer as the `greedy` predictor (llm.py), computed by vLLM for tens of thousands of
items: the same token ids per prompt (the model's own tokenizer, the same cut of over-long
prompts), greedy decoding (`SamplingParams(temperature=0)`) of as many new tokens as `greedy`
takes, and the price read by the same function (`extract_price` after "Price is $"). A LoRA
adapter runs as a `LoRARequest` on the base model (`enable_lora=True`); a merged model is just
a model folder with no adapter. vLLM needs a CUDA GPU: where it is not installed the predictor
fails with one line.

    p = make_predictor("vllm", model="meta-llama/Llama-3.1-8B", adapter="runs/pricer-8b")
    p.predict(items)
"""

from __future__ import annotations

import json

from pricer.data.prompts import PRICE_PREFIX
from pricer.errors import PricerError
from pricer.predict.base import Predictor
from pricer.predict.extract import extract_price

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def import_vllm():
    """(LLM, SamplingParams, LoRARequest) from vLLM, or one line saying how to get it."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise PricerError("the vllm predictor needs vLLM, which is not installed here: pip install "
                          "vllm on a CUDA machine (or use --predictor greedy)") from None
    return LLM, SamplingParams, LoRARequest


class VLLMPredictor(Predictor):
    """Greedy price prediction by vLLM (build it with `make_predictor("vllm", ...)`)."""

    name = "vllm"

    def __init__(self, model: str = "default", adapter: str | None = None,
                 precision: str = "auto", max_new_tokens: int | None = None,
                 batch_size: int = 4096, max_model_len: int = 2048,
                 gpu_memory_utilization: float = 0.9, seed: int = 42,
                 prompt_format: str | None = None):
        from pricer.data.prompts import prompt_format as named_format
        from pricer.models.load import resolve_adapter, resolve_model
        from pricer.models.run import ADAPTER_CONFIG, Run
        from pricer.models.precision import resolve_precision
        from pricer.predict.llm import is_digit_tokenizer

        if precision not in (*DTYPES, "4bit"):
            raise PricerError(f"vllm: precision {precision} is not offered (choose from auto, "
                              "bf16, fp16, fp32, 4bit)")
        if batch_size < 1 or max_model_len < 16:
            raise PricerError("vllm: batch_size must be >= 1 and max_model_len >= 16")
        LLM, SamplingParams, LoRARequest = import_vllm()
        path = resolve_model(model)
        engine = dict(model=path, tokenizer=path, seed=seed, max_model_len=max_model_len,
                      gpu_memory_utilization=gpu_memory_utilization,
                      dtype=DTYPES[resolve_precision("4bit").compute
                                   if precision == "4bit" else precision])
        if precision == "4bit":  # quantised by vLLM while loading, as bitsandbytes does for greedy
            engine["quantization"] = "bitsandbytes"
        self.lora = None
        if adapter:
            folder = resolve_adapter(adapter)
            Run(folder).refuse_head("vllm")
            rank = json.loads((folder / ADAPTER_CONFIG).read_text()).get("r", 8)
            engine |= {"enable_lora": True, "max_loras": 1,
                       "max_lora_rank": next((r for r in LORA_RANKS if r >= max(rank, 32)), rank)}
            self.lora = LoRARequest("pricer", 1, str(folder))
        # as greedy: the adapter's own prompt format unless one is given
        self.prompt_format = named_format(prompt_format or (Run(folder).prompt_format
                                                            if adapter else None) or "2024").name
        self.llm = LLM(**engine)
        self.tokenizer = self.llm.get_tokenizer()
        # as greedy: 4 new tokens where whole prices are single tokens (Llama 3), 8 digit by digit
        self.max_new_tokens = max_new_tokens or (8 if is_digit_tokenizer(self.tokenizer) else 4)
        self.sampling = SamplingParams(temperature=0, max_tokens=self.max_new_tokens)
        self.batch_size, self.max_model_len = batch_size, max_model_len
        self.info = {"model": model, "adapter": adapter, "precision": precision,
                     "engine": "vllm", "max_model_len": max_model_len,
                     "prompt_format": self.prompt_format}

    def settings(self) -> dict:
        return {"method": "greedy", "batch_size": self.batch_size,
                "max_new_tokens": self.max_new_tokens, **self.info}

    def encode(self, items) -> list[list[int]]:
        """Token ids per item, as greedy's (pricer.predict.prompting)."""
        from pricer.predict.prompting import encode, prompts_for

        prompts = prompts_for(items, self.prompt_format, self.tokenizer)
        return encode(self.tokenizer, prompts, self.max_model_len - self.max_new_tokens)[0]

    def predict(self, items) -> list[float | None]:
        return [d["price"] for d in self.predict_details(items)]

    def predict_details(self, items) -> list[dict]:
        """One dict per item: `price` (None when no number, with `reason`) and the `text`."""
        if not items:
            return []
        requests = [{"prompt_token_ids": ids} for ids in self.encode(items)]
        outputs = self.llm.generate(requests, self.sampling, lora_request=self.lora,
                                    use_tqdm=False)
        results = []
        for output in outputs:  # vLLM returns them in the order of the requests
            text = output.outputs[0].text
            price = extract_price(PRICE_PREFIX + text)  # greedy's rule: the text after the prefix
            results.append({"price": price, "text": text} if price is not None else
                           {"price": None, "text": text, "reason": f"no number in the output {text!r}"})
        return results
