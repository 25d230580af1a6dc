"""Greedy prices from a GGUF file through llama.cpp (llama-cpp-python): score what you deploy.

The same answer as the `greedy` predictor (llm.py) on the model the GGUF was exported from, read
the way llama.cpp and Ollama will run it:
- the prompt tokenized by llama.cpp's own tokenizer (the one in the GGUF), with the special
  tokens the file asks for (`tokenizer.ggml.add_bos_token`: SmolLM2's prompts are raw text,
  Llama 3's start with BOS, as transformers' `tokenizer(prompt)`), special-token text parsed as
  transformers does. For SmolLM2 these are the ids of SmolLM2's own tokenizer; pricer's default
  model's transformers tokenizer lacks its Digits step and differs on ~5 % of the test prompts
  (docs/predict.md, "Scoring a GGUF");
- the prompt format chosen as greedy's ("2024" unless told: a GGUF does not say which format
  its adapter was trained with), the "2025" token cut made with the GGUF's tokenizer;
- greedy decoding (llama.cpp's greedy sampler: the argmax) of as many new tokens as greedy takes
  (8 where "999" is several tokens, 4 where it is one), stopped as greedy stops: at an
  end-of-generation or control token, or once the number is finished;
- the price read by the same function (`extract_price` after "Price is $").

One prompt at a time (llama-cpp-python decodes one sequence), the KV cache cleared between
prompts so that an answer never depends on the prompt before it. Where llama-cpp-python is not
installed, or llama.cpp cannot load the file, the predictor fails with one line.

    p = make_predictor("gguf", path="exports/x/gguf/pricer-q4_k_m.gguf", threads=2)
    p.predict(items)
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from pricer.data.prompts import DEFAULT_FORMAT, PRICE_PREFIX
from pricer.data.prompts import prompt_format as named_format
from pricer.errors import PricerError
from pricer.predict.base import Predictor
from pricer.predict.extract import extract_price
from pricer.predict.llm import NUMBER_CHARS
from pricer.predict.prompting import encode, prompt_limit, prompts_for

INSTALL = "pip install 'pricer[gguf]'"


def import_llama_cpp():
    """The llama_cpp module, or one line saying how to get it."""
    try:
        import llama_cpp
    except ImportError:
        raise PricerError(f"the gguf predictor needs llama-cpp-python, which is not installed "
                          f"here: {INSTALL}") from None
    return llama_cpp


def load_gguf(path: Path, context: int, threads: int | None = None):
    """A `llama_cpp.Llama` on `path`, or one line saying why not. `threads` for the prompt and
    the generation alike; None: llama-cpp-python's defaults (all cores for the prompt, half of
    them for the new tokens)."""
    llama_cpp = import_llama_cpp()
    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: {'is a folder, not' if path.is_dir() else 'no such'} GGUF file")
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=context, n_threads=threads,
                               n_threads_batch=threads, verbose=False)  # None: the default
    except (ValueError, RuntimeError, OSError):  # llama.cpp says only "Failed to load model"
        raise PricerError(f"{path}: llama.cpp cannot load it as a model (not a GGUF file, "
                          "truncated, or an architecture this llama.cpp does not know)") from None


class GGUFTokenizer:
    """llama.cpp's tokenizer with the calls pricer makes of a transformers tokenizer
    (`tokenizer(texts, add_special_tokens=...)["input_ids"]`, `decode`, `batch_decode`), so the
    prompt formats cut descriptions with the GGUF's own tokens."""

    def __init__(self, llm):
        llama_cpp = import_llama_cpp()
        self.llm = llm
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._llama_cpp = llama_cpp

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        # add_bos=True adds what the file asks for (BOS only where add_bos_token is true);
        # special=True reads "<|im_start|>" in the text as its token, as transformers does
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)

    def __call__(self, texts, add_special_tokens: bool = True) -> dict:
        if isinstance(texts, str):
            return {"input_ids": self.encode(texts, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in texts]}

    def piece(self, token: int) -> bytes:
        """The bytes of one token, special tokens spelled out (as transformers' decode)."""
        size = 256
        buffer = ctypes.create_string_buffer(size)
        n = self._llama_cpp.llama_token_to_piece(self.vocab, token, buffer, size, 0, True)
        if n < 0:  # longer than the buffer: -n is the size it needs
            buffer = ctypes.create_string_buffer(-n)
            n = self._llama_cpp.llama_token_to_piece(self.vocab, token, buffer, -n, 0, True)
        return buffer.raw[:n]

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.piece(t) for t in ids).decode("utf-8", errors="replace")

    def batch_decode(self, rows: list[list[int]]) -> list[str]:
        return [self.decode(r) for r in rows]

    def is_stop(self, token: int) -> bool:
        """End of generation (EOS, EOT...) or a control token: greedy's `stop` table."""
        return bool(self._llama_cpp.llama_vocab_is_eog(self.vocab, token)
                    or self._llama_cpp.llama_vocab_is_control(self.vocab, token))


class GGUFPredictor(Predictor):
    """Greedy price prediction by llama.cpp on a GGUF file (build it with
    `make_predictor("gguf", path=...)`)."""

    name = "gguf"
    batch_size = 16  # prompts per predict call the harness makes (decoded one by one)

    def __init__(self, path: Path | None = None, threads: int | None = None, context: int = 2048,
                 max_new_tokens: int | None = None, prompt_format: str = DEFAULT_FORMAT,
                 max_length: int | None = None, name: str | None = None):
        if path is None:
            raise PricerError("gguf: give the GGUF file with --path FILE.gguf (or --opt path=FILE.gguf)")
        if context < 64:
            raise PricerError(f"gguf: context must be at least 64 tokens, got {context}")
        if threads is not None and threads < 1:
            raise PricerError(f"gguf: threads must be at least 1, got {threads}")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise PricerError(f"gguf: max_new_tokens must be at least 1, got {max_new_tokens}")
        if max_length is not None and max_length < 16:
            raise PricerError(f"gguf: max_length must be at least 16 tokens, got {max_length}")
        self.prompt_format = named_format(prompt_format).name  # before the model: fail fast
        self.path = Path(path)
        self.llm = load_gguf(self.path, context, threads)
        self.tokenizer = GGUFTokenizer(self.llm)
        self.context = self.llm.n_ctx()
        digit_tokenizer = len(self.tokenizer.encode("999", add_special_tokens=False)) > 1
        # as greedy: 4 new tokens where whole prices are single tokens (Llama 3), 8 digit by digit
        self.max_new_tokens = max_new_tokens or (8 if digit_tokenizer else 4)
        if self.max_new_tokens >= self.context - 16:
            raise PricerError(f"gguf: max_new_tokens {self.max_new_tokens} leaves no room for a "
                              f"prompt in a context of {self.context}")
        # the run's max_length (a GGUF does not record it): prompts cut as the run's greedy cuts them
        self.max_length = max_length
        self.name = name or "gguf"
        self._kinds: dict[int, tuple[bool, bool, bool, bool]] = {}

    def settings(self) -> dict:
        return {"method": "greedy", "engine": "llama.cpp", "path": str(self.path),
                "max_new_tokens": self.max_new_tokens, "prompt_format": self.prompt_format,
                "max_length": self.max_length,
                "context": self.context, "threads": self.llm.n_threads,
                "threads_batch": self.llm.n_threads_batch}

    def encode(self, items) -> tuple[list[list[int]], list[bool]]:
        """Token ids per item, and whether each was cut (pricer.predict.prompting, as greedy)."""
        return encode(self.tokenizer, prompts_for(items, self.prompt_format, self.tokenizer),
                      prompt_limit(self.context - self.max_new_tokens,
                                   {"max_length": self.max_length}))

    def _kind(self, token: int) -> tuple[bool, bool, bool, bool]:
        """(stop, has_digit, pure_number, ends_number) of a token: greedy's tables (llm.py)."""
        if token not in self._kinds:
            s = self.tokenizer.decode([token])
            first = next((k for k, c in enumerate(s) if c.isdigit()), None)
            self._kinds[token] = (
                self.tokenizer.is_stop(token), first is not None,
                all(c in NUMBER_CHARS for c in s),
                first is not None and any(c not in NUMBER_CHARS for c in s[first:]))
        return self._kinds[token]

    def _greedy(self, ids: list[int]) -> list[int]:
        """Greedy new tokens after `ids`, stopped as greedy stops."""
        self.llm.reset()  # no prefix reuse: an answer never depends on the prompt before it
        generated, started = [], False
        for token in self.llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0,
                                       repeat_penalty=1.0, reset=True):
            generated.append(token)
            stop, has_digit, pure, ends = self._kind(token)
            if stop or ends or (started and not pure) or len(generated) >= self.max_new_tokens:
                break
            started = started or has_digit
        return generated

    # ---- the contract ----
    def predict(self, items) -> list[float | None]:
        return [d["price"] for d in self.predict_details(items)]

    def predict_details(self, items, progress=None) -> list[dict]:
        """One dict per item: `price` (None when no number, with `reason`), the generated
        `text`, `truncated`. `progress(n)` is called after each item."""
        ids, truncated = self.encode(items)
        results = []
        for row, cut in zip(ids, truncated):
            text = self.tokenizer.decode(self._greedy(row))
            price = extract_price(PRICE_PREFIX + text)  # greedy's rule: the text after the prefix
            results.append({"price": price, "text": text, "truncated": cut} if price is not None
                           else {"price": None, "text": text, "truncated": cut,
                                 "reason": f"no number in the output {text!r}"})
            if progress:
                progress(1)
        return results
