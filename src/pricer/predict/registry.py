"""Every predictor by name: {name: where its constructor lives, and what the name fixes}.

constant, random, guesses: simple.py; baseline (a saved one, path=) and the baseline kinds
(features-lr, bow-lr, embed-lr, embed-svr, embed-rf: fitted on a train split): baselines.py;
dnn (residual MLP on hashed words; a saved one loads as baseline path=X.safetensors): dnn.py;
ensemble (a weights file of `pricer ensemble`, path=): ensemble.py; frontier: frontier.py;
frontier-rag (frontier + the k most similar train items; path= a saved index): rag.py;
greedy, topk, expected: the local LLM (llm.py); head: a run trained with --head regression
(head.py); vllm: greedy on vLLM's engine, for large batches on a CUDA machine (vllm.py); gguf:
greedy on a GGUF file through llama.cpp, the model as it will be deployed (gguf.py).

A predictor's options are the keyword arguments of its constructor, read from its signature
(nothing is restated here). From Python they are passed typed (`make_predictor("expected",
branches=4)`); from the CLI as text (`--opt branches=4`), converted to the declared type, so any
option of any predictor is reachable the same way. An unknown option or a bad value is one clear
PricerError. Modules are imported only when a name is used (`pricer --help` stays instant).
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from pathlib import Path

from pricer.errors import PricerError

from pricer.predict.baselines import KINDS as BASELINE_KINDS  # noqa: E402  (numpy only)
from pricer.predict.llm import METHODS as LLM_METHODS  # noqa: E402  (no torch until used)

# name -> (module in pricer.predict, constructor, the arguments the name fixes)
REGISTRY: dict[str, tuple[str, str, dict]] = {
    "constant": ("simple", "ConstantPredictor", {}),
    "random": ("simple", "RandomPredictor", {}),
    "guesses": ("simple", "GuessesPredictor", {}),
    "baseline": ("baselines", "load_saved", {}),
    "frontier": ("frontier", "FrontierPredictor.create", {}),
    "frontier-rag": ("rag", "RagPredictor.create", {}),
    "dnn": ("dnn", "DnnPredictor", {}),
    "ensemble": ("ensemble", "load_ensemble", {}),
    "head": ("head", "load_head_predictor", {}),
    "vllm": ("vllm", "VLLMPredictor", {}),
    "gguf": ("gguf", "GGUFPredictor", {}),
    **{kind: ("baselines", "Baseline", {"kind": kind}) for kind in BASELINE_KINDS},
    **{method: ("llm", "load_llm_predictor", {"method": method}) for method in LLM_METHODS},
}


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def constructor(name: str):
    """(the callable that makes predictor `name`, the arguments its name fixes)."""
    if name not in REGISTRY:
        raise PricerError(f"unknown predictor '{name}' (choose from {', '.join(REGISTRY)})")
    module, attr, fixed = REGISTRY[name]
    found = importlib.import_module(f"pricer.predict.{module}")
    for part in attr.split("."):
        found = getattr(found, part)
    return found, fixed


def option_types(name: str) -> dict[str, tuple]:
    """{option: the types it takes, in the declared order (`X | None` -> (X,))} of predictor
    `name`: the keyword arguments of its constructor, less those its name fixes."""
    make, fixed = constructor(name)
    function = make.__init__ if inspect.isclass(make) else make
    hints = typing.get_type_hints(getattr(function, "__func__", function))
    out = {}
    for key, parameter in inspect.signature(make).parameters.items():
        if key in fixed or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        kind = hints.get(key, str)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            out[key] = tuple(a for a in typing.get_args(kind) if a is not type(None))
        else:
            out[key] = (kind,)
    return out


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
    """A predictor from its name and options; options left None are unset (the default).
    `p.get_params()` gives the options back, so `make_predictor(p.registry_name,
    **p.get_params())` makes it again."""
    make, fixed = constructor(name)
    kinds = option_types(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(kinds))
    if unknown:
        raise PricerError(f"{name}: no option {', '.join(unknown)} (it takes: "
                          f"{', '.join(kinds) or 'none'})")
    typed = {k: convert(name, k, v, kinds[k]) for k, v in given.items()}
    predictor = make(**fixed, **typed)
    predictor.registry_name, predictor._params = name, typed
    return predictor


def rebuild(predictor):
    """The same predictor made again from its name and options (unfitted where it learns)."""
    return make_predictor(predictor.registry_name, **predictor.get_params())


