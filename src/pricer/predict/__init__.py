"""Predictors: one contract (`Predictor`), built by name (`make_predictor`).

Public surface, imported lazily (torch and scikit-learn load only when a name is used, so
`pricer --help` stays instant):
    Predictor, make_predictor, names                       the contract and the registry
    ConstantPredictor, RandomPredictor, GuessesPredictor   simple.py
    Baseline, load_baseline                                baselines.py (scikit-learn Pipelines)
    FrontierPredictor                                      frontier.py (OpenAI-compatible APIs)
    LLMPredictor, load_llm_predictor                       llm.py (greedy, topk, expected)
    GGUFPredictor                                          gguf.py (greedy by llama.cpp on a GGUF)
    extract_price                                          extract.py (the reference's regex)
"""

import importlib

_WHERE = {
    "Predictor": "base", "make_predictor": "registry", "names": "registry",
    "ConstantPredictor": "simple", "RandomPredictor": "simple", "GuessesPredictor": "simple",
    "Baseline": "baselines", "load_baseline": "baselines", "FrontierPredictor": "frontier",
    "LLMPredictor": "llm", "load_llm_predictor": "llm", "extract_price": "extract",
    "GGUFPredictor": "gguf",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
