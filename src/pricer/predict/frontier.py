"""A frontier model behind any OpenAI-compatible chat API (OpenAI, vLLM, Ollama, llama.cpp...).

The reference's prompt (week 6): a system message, the test prompt without "to the nearest
dollar" and without the price line as the user message, and "Price is $" prefilled as the
assistant's reply; seed 42, 5 new tokens. The price is read with `extract_price`.
The `openai` SDK does the HTTP: timeouts, retries with backoff on 429/5xx/dropped connections
(honouring Retry-After). The first request is made without retries, so an API that cannot be
reached at all (no network, wrong host or port) stops the run at once with one line.
The key (and any `user:password@` in the base URL) is redacted from every message and setting.
"""

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from pricer.data.prompts import PRICE_PREFIX, description, test_prompt
from pricer.errors import PricerError
from pricer.predict.base import Predictor, texts_of
from pricer.predict.extract import extract_price

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_VARIABLES = ("PRICER_API_KEY", "OPENAI_API_KEY")
NO_KEY = "no-key"  # the SDK insists on a key; local servers (vLLM, Ollama) ignore this one
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def messages_for(text: str) -> list[dict]:
    """The reference's `messages_for(item)`, of an item's description (or a prompt)."""
    user = test_prompt(description(text)).replace(" to the nearest dollar", "").replace(
        f"\n\n{PRICE_PREFIX}", "")
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": PRICE_PREFIX}]


class FrontierPredictor(Predictor):
    """`model` over the chat API at `base_url` (env PRICER_BASE_URL / OPENAI_BASE_URL, else
    OpenAI); the key comes from `api_key` or env PRICER_API_KEY / OPENAI_API_KEY (optional for
    local servers)."""

    name = "frontier"
    batch_size = 16

    @classmethod
    def create(cls, api_model: str | None = None, model: str | None = None,
               base_url: str | None = None, api_key: str | None = None, seed: int = 42,
               max_tokens: int = 5, timeout: float = 60.0, max_retries: int = 5, workers: int = 4):
        """The registry's constructor: the API's model name is `api_model` (or `model`)."""
        return cls(api_model or model, base_url=base_url, api_key=api_key, seed=seed,
                   max_tokens=max_tokens, timeout=timeout, max_retries=max_retries,
                   workers=workers)

    def __init__(self, model: str | None, base_url: str | None = None, api_key: str | None = None,
                 seed: int = 42, max_tokens: int = 5, timeout: float = 60.0, max_retries: int = 5,
                 workers: int = 4):
        from openai import OpenAI

        if not model:
            raise PricerError(f"{self.name}: give the model name (--api-model)")
        if timeout <= 0 or max_retries < 0 or workers < 1:
            raise PricerError(f"{self.name}: timeout must be > 0, max_retries >= 0, workers >= 1")
        self.model, self.seed, self.max_tokens = model, seed, max_tokens
        self.base_url = (base_url or os.environ.get("PRICER_BASE_URL")
                         or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or next(
            (os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), None)
        self.timeout, self.max_retries, self.workers = timeout, max_retries, workers
        self.client = OpenAI(base_url=self.base_url, api_key=self.api_key or NO_KEY,
                             timeout=timeout, max_retries=max_retries)
        self._reached = threading.Event()  # set after the first answer from the server

    def redact(self, text: str) -> str:
        """`text` without the key or the URL's user:password."""
        text = _USERINFO.sub("***@", str(text))
        return text.replace(self.api_key, "***") if self.api_key else text

    def settings(self) -> dict:  # never the key
        return {"model": self.model, "base_url": self.redact(self.base_url), "seed": self.seed,
                "max_tokens": self.max_tokens, "system": SYSTEM, "prefill": PRICE_PREFIX}

    def _create(self, messages: list[dict]):
        import openai

        request = dict(model=self.model, messages=messages, seed=self.seed,
                       max_tokens=self.max_tokens)
        if not self._reached.is_set():  # first contact: no retries if nobody answers at all
            try:
                reply = self.client.with_options(max_retries=0).chat.completions.create(**request)
                self._reached.set()
                return reply
            except openai.APITimeoutError:
                pass  # slow, not absent: the normal retries below
            except openai.APIConnectionError as e:
                raise PricerError(f"{self.redact(self.base_url)}: cannot reach the API "
                                  f"({self.redact(e.__cause__ or e)})") from None
            except openai.APIStatusError as e:
                self._reached.set()  # it answers; 429/5xx get the normal retries below
                if e.status_code != 429 and e.status_code < 500:
                    raise
        return self.client.chat.completions.create(**request)

    def conversations(self, items) -> list[list[dict]]:
        """The chat messages sent for each item (`frontier-rag` adds similar items)."""
        return [messages_for(t) for t in texts_of(items)]

    def ask(self, messages: list[dict]) -> float | None:
        """One chat request; the price read from the reply."""
        import openai

        where = self.redact(self.base_url)
        try:
            reply = self._create(messages)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise PricerError(f"{where}: the API refused the key ({e.status_code}); set "
                              "PRICER_API_KEY or OPENAI_API_KEY") from None
        except openai.NotFoundError:
            raise PricerError(f"{where}: no chat completions there, or no model "
                              f"'{self.model}' (404)") from None
        except openai.APITimeoutError:
            raise RuntimeError(f"API timed out after {self.max_retries + 1} tries of "
                               f"{self.timeout:g} s") from None
        except openai.APIConnectionError as e:
            raise RuntimeError(f"API unreachable after {self.max_retries + 1} tries: "
                               f"{self.redact(e.__cause__ or e)}") from None
        except openai.APIStatusError as e:
            raise RuntimeError(self.redact(f"API error {e.status_code}: {e.message}")[:300]) from None
        try:
            text = reply.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise RuntimeError(self.redact(f"unexpected API reply: {reply}")[:300]) from None
        return extract_price(text)

    def ask_all(self, conversations: list[list[dict]]) -> list[float | None]:
        """`ask` each conversation, `workers` at a time once the API has answered."""
        if self.workers <= 1 or len(conversations) <= 1:
            return [self.ask(c) for c in conversations]
        if not self._reached.is_set():  # find out once, alone, whether the API answers at all
            return [self.ask(conversations[0])] + self.ask_all(conversations[1:])
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self.ask, conversations))

    def predict(self, items) -> list[float | None]:
        return self.ask_all(self.conversations(items))
