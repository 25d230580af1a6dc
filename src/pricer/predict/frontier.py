"""A frontier model behind any OpenAI-compatible chat API (OpenAI, vLLM, Ollama, llama.cpp...).

The reference's prompt (week 6): a system message, the test prompt without "to the nearest
dollar" and without the price line as the user message, and "Price is $" prefilled as the
assistant's reply; seed 42, 5 new tokens. The price is read with `extract_price`.
Written on the standard library's urllib (one POST per item; nothing to install); retries with
exponential backoff on 429, 5xx, timeouts and dropped connections.
"""

import json
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from pricer.data.prompts import PRICE_PREFIX, as_test_prompt
from pricer.errors import PricerError
from pricer.predict.extract import extract_price

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_VARIABLES = ("PRICER_API_KEY", "OPENAI_API_KEY")


def messages_for(prompt: str) -> list[dict]:
    """The reference's `messages_for(item)`."""
    user = as_test_prompt(prompt).replace(" to the nearest dollar", "").replace(
        f"\n\n{PRICE_PREFIX}", "")
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": PRICE_PREFIX}]


class FrontierPredictor:
    """`model` over the chat API at `base_url` (env PRICER_BASE_URL / OPENAI_BASE_URL, else
    OpenAI); the key comes from `api_key` or env PRICER_API_KEY / OPENAI_API_KEY (optional for
    local servers)."""

    name = "frontier"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 seed: int = 42, max_tokens: int = 5, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 1.0, workers: int = 4):
        if not model:
            raise PricerError("frontier: give the model name (--api-model)")
        self.model, self.seed, self.max_tokens = model, seed, max_tokens
        self.base_url = (base_url or os.environ.get("PRICER_BASE_URL")
                         or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or next(
            (os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), None)
        self.timeout, self.retries, self.backoff, self.workers = timeout, retries, backoff, workers
        self.batch_size = 16

    def settings(self) -> dict:  # never the key
        return {"model": self.model, "base_url": self.base_url, "seed": self.seed,
                "max_tokens": self.max_tokens, "system": SYSTEM, "prefill": PRICE_PREFIX}

    def _post(self, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                if e.code in (401, 403):
                    raise PricerError(f"{self.base_url}: the API refused the key ({e.code}); set "
                                      "PRICER_API_KEY or OPENAI_API_KEY") from None
                if e.code == 404:
                    raise PricerError(f"{self.base_url}: no chat completions there, or no model "
                                      f"'{self.model}' (404)") from None
                if e.code != 429 and e.code < 500 or attempt == self.retries:
                    raise RuntimeError(f"API error {e.code}: {e.read()[:200]!r}") from None
                wait = e.headers.get("Retry-After")
                delay = float(wait) if wait and wait.replace(".", "", 1).isdigit() else None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise RuntimeError(f"API unreachable after {attempt + 1} tries: {e}") from None
                delay = None
            time.sleep(min(delay if delay is not None else self.backoff * 2 ** attempt, 60))
        raise AssertionError("unreachable")

    def predict_one(self, prompt: str) -> float | None:
        reply = self._post({"model": self.model, "messages": messages_for(prompt),
                            "seed": self.seed, "max_tokens": self.max_tokens})
        try:
            text = reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"unexpected API reply: {str(reply)[:200]}") from None
        return extract_price(text)

    def predict(self, prompts: list[str]) -> list[float | None]:
        if self.workers <= 1 or len(prompts) <= 1:
            return [self.predict_one(p) for p in prompts]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self.predict_one, prompts))
