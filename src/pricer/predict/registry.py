"""Every predictor by name: a table of factories {name: factory(**options) -> Predictor}.

constant, random, guesses: simple.py; baseline (a saved one, path=) and the baseline kinds
(features-lr, bow-lr, embed-lr, embed-svr, embed-rf: fitted on a train split): baselines.py;
dnn (residual MLP on hashed words; a saved one loads as baseline --path X.safetensors): dnn.py;
ensemble (a weights file of `pricer ensemble`, path=): ensemble.py; frontier: frontier.py;
frontier-rag (frontier + the k most similar train items; path= a saved index): rag.py;
greedy, topk, expected: the local LLM (llm.py); head: a run trained with --head regression
(head.py); vllm: greedy on vLLM's engine, for large batches on a CUDA machine (vllm.py); gguf:
greedy on a GGUF file through llama.cpp, the model as it will be deployed (gguf.py).

A factory's keyword arguments, with their types and defaults, are the predictor's options. From
Python they are passed typed (`make_predictor("expected", branches=4)`); from the CLI as text
(`pricer eval --opt branches=4`), converted here to the declared type, so any option of any
predictor is reachable the same way. An unknown option or a bad value is one clear PricerError.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

from pricer.errors import PricerError

LLM_METHODS = ("greedy", "topk", "expected")
from pricer.predict.baselines import KINDS as BASELINE_KINDS  # noqa: E402  (numpy only)


def constant(value: float | None = None):
    from pricer.predict.simple import ConstantPredictor

    return ConstantPredictor(value)


def random(seed: int = 42):
    from pricer.predict.simple import RandomPredictor

    return RandomPredictor(seed)


def guesses(guesses: Path | None = None):
    from pricer.predict.simple import GuessesPredictor

    if guesses is None:
        raise PricerError("guesses: give the CSV file with --guesses FILE.csv (columns id,guess)")
    return GuessesPredictor(guesses)


def baseline(path: Path | None = None):
    from pricer.predict.baselines import load_baseline

    if path is None:
        raise PricerError("baseline: give the saved baseline with --path FILE")
    if Path(path).suffix == ".safetensors":  # a saved dnn (predict/dnn.py)
        from pricer.predict.dnn import load_dnn

        return load_dnn(path)
    return load_baseline(path)


def ensemble(path: Path | None = None):
    from pricer.predict.ensemble import load_ensemble

    if path is None:
        raise PricerError("ensemble: give the weights file of pricer ensemble with --path FILE")
    return load_ensemble(path)


def dnn(blocks: int = 4, width: int = 512, features: int = 5000, epochs: int = 20,
        patience: int = 3, lr: float = 1e-3, train_batch: int = 128, dropout: float = 0.2,
        val_fraction: float = 0.1, seed: int = 42, balance_prices: bool = False,
        prices_like: list[float] | Path | None = None):
    from pricer.predict.dnn import DnnPredictor

    prices_like = _prices(prices_like)
    return DnnPredictor(blocks=blocks, width=width, features=features, epochs=epochs,
                        patience=patience, lr=lr, train_batch=train_batch, dropout=dropout,
                        val_fraction=val_fraction, seed=seed, balance_prices=balance_prices,
                        prices_like=prices_like)


def _prices(prices_like):
    """prices_like as prices: a file (or saved data set) is read for its items' prices."""
    if isinstance(prices_like, (str, Path)):
        from pricer.data.balance import prices_like as prices_of

        return prices_of(prices_like)
    return prices_like


def frontier(api_model: str | None = None, model: str | None = None, base_url: str | None = None,
             api_key: str | None = None, seed: int = 42, max_tokens: int = 5,
             timeout: float = 60.0, max_retries: int = 5, workers: int = 4):
    from pricer.predict.frontier import FrontierPredictor

    return FrontierPredictor(api_model or model, base_url=base_url, api_key=api_key, seed=seed,
                             max_tokens=max_tokens, timeout=timeout, max_retries=max_retries,
                             workers=workers)


def frontier_rag(api_model: str | None = None, model: str | None = None,
                 base_url: str | None = None, api_key: str | None = None, k: int = 5,
                 path: Path | None = None, seed: int = 42, max_tokens: int = 5,
                 timeout: float = 60.0, max_retries: int = 5, workers: int = 4):
    from pricer.predict.rag import RagPredictor

    return RagPredictor(api_model or model, k=k, path=path, base_url=base_url, api_key=api_key,
                        seed=seed, max_tokens=max_tokens, timeout=timeout,
                        max_retries=max_retries, workers=workers)


def vllm(model: str = "default", adapter: str | None = None, precision: str = "auto",
         max_new_tokens: int | None = None, batch_size: int = 4096, max_model_len: int = 2048,
         gpu_memory_utilization: float = 0.9, seed: int = 42, prompt_format: str | None = None):
    from pricer.predict.vllm import VLLMPredictor

    return VLLMPredictor(model, adapter=adapter, precision=precision,
                         max_new_tokens=max_new_tokens, batch_size=batch_size,
                         max_model_len=max_model_len,
                         gpu_memory_utilization=gpu_memory_utilization, seed=seed,
                         prompt_format=prompt_format)


def gguf(path: Path | None = None, threads: int | None = None, context: int = 2048,
         max_new_tokens: int | None = None, prompt_format: str = "2024", name: str | None = None):
    from pricer.predict.gguf import GGUFPredictor

    if path is None:
        raise PricerError("gguf: give the GGUF file with --path FILE.gguf (or --opt path=FILE.gguf)")
    return GGUFPredictor(path, threads=threads, context=context, max_new_tokens=max_new_tokens,
                         prompt_format=prompt_format, name=name)


METHOD_OPTIONS = {"greedy": ("max_new_tokens",), "topk": ("top_k",),
                  "expected": ("branches", "max_int_digits", "max_decimals", "min_prob")}


def _llm(method: str):
    def factory(model: str = "default", adapter: str | None = None, precision: str = "auto",
                device: str | None = None, batch_size: int = 16, merge: bool = False,
                quantize: str | None = None, max_new_tokens: int | None = None,
                top_k: int | None = None, branches: int | None = None,
                max_int_digits: int | None = None, max_decimals: int | None = None,
                min_prob: float | None = None, prompt_format: str | None = None,
                name: str | None = None):
        from pricer.predict.llm import load_llm_predictor

        given = {k: v for k, v in dict(max_new_tokens=max_new_tokens, top_k=top_k,
                                       branches=branches, max_int_digits=max_int_digits,
                                       max_decimals=max_decimals, min_prob=min_prob).items()
                 if v is not None}
        wrong = [k for k in given if k not in METHOD_OPTIONS[method]]
        if wrong:
            owner = next(m for m, keys in METHOD_OPTIONS.items() if wrong[0] in keys)
            raise PricerError(f"{method}: option {wrong[0]} is for {owner} (options of {method}: "
                              f"{', '.join(METHOD_OPTIONS[method])})")
        return load_llm_predictor(method, model=model, adapter=adapter, precision=precision,
                                  device=device, batch_size=batch_size, merge=merge,
                                  quantize=quantize, prompt_format=prompt_format, name=name,
                                  **given)

    return factory


def head(model: str = "default", adapter: str | None = None, precision: str = "auto",
         device: str | None = None, batch_size: int = 32, name: str | None = None):
    from pricer.predict.head import load_head_predictor

    return load_head_predictor(model=model, adapter=adapter, precision=precision, device=device,
                               batch_size=batch_size, name=name)


def _baseline_kind(kind: str):
    def factory(seed: int = 42, balance_prices: bool = False,
                prices_like: list[float] | Path | None = None):
        from pricer.predict.baselines import Baseline

        return Baseline(kind, seed=seed, balance_prices=balance_prices,
                        prices_like=_prices(prices_like))

    return factory


FACTORIES = {
    "constant": constant, "random": random, "guesses": guesses, "baseline": baseline,
    "frontier": frontier, "frontier-rag": frontier_rag, "dnn": dnn, "ensemble": ensemble,
    "head": head, "vllm": vllm, "gguf": gguf,
    **{kind: _baseline_kind(kind) for kind in BASELINE_KINDS},
    **{method: _llm(method) for method in LLM_METHODS},
}


def names() -> tuple[str, ...]:
    return tuple(FACTORIES)


def option_types(name: str) -> dict[str, tuple]:
    """{option: the types it takes, in the declared order (`X | None` -> (X,))} of predictor `name`."""
    factory = _factory(name)
    hints = typing.get_type_hints(factory)
    out = {}
    for key in inspect.signature(factory).parameters:
        kind = hints.get(key, str)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            out[key] = tuple(a for a in typing.get_args(kind) if a is not type(None))
        else:
            out[key] = (kind,)
    return out


def _factory(name: str):
    if name not in FACTORIES:
        raise PricerError(f"unknown predictor '{name}' (choose from {', '.join(FACTORIES)})")
    return FACTORIES[name]


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def convert(name: str, key: str, value, kinds: tuple):
    """`value` (text from the CLI, or already typed) as the first of the option's types `kinds`
    that reads it (`list[float] | Path`: "12,30" is a list, "train.jsonl" stays a path); a
    PricerError when none does."""
    if not isinstance(value, str):
        return value
    for kind in kinds:
        try:
            return _read(kind, value if kind is str else value.strip())
        except (TypeError, ValueError):
            continue
    raise PricerError(f"{name}: option {key}={value!r} must be "
                      f"{' or '.join(_what(kind) for kind in kinds)}")


def _read(kind, text: str):
    if kind is str:
        return text
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(text)
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return [_read(item, part.strip()) for part in text.split(",") if part.strip()]
    return kind(text)


def _what(kind) -> str:
    if typing.get_origin(kind) is list:
        return f"a comma-separated list ({_what(typing.get_args(kind)[0])} each)"
    return {int: "a whole number", float: "a number", bool: "true or false",
            Path: "a path"}.get(kind, getattr(kind, "__name__", str(kind)))


def make_predictor(name: str, **options):
    """A predictor from its name and options; options left None are unset (the default)."""
    factory = _factory(name)
    kinds = option_types(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(kinds))
    if unknown:
        raise PricerError(f"{name}: no option {', '.join(unknown)} (it takes: "
                          f"{', '.join(kinds) or 'none'})")
    return factory(**{k: convert(name, k, v, kinds[k]) for k, v in given.items()})
