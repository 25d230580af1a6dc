"""Evaluation: the reference's yardstick, the harness, the baselines run and the leaderboard.

Public surface, imported lazily (no scikit-learn or matplotlib at `pricer --help`):
    evaluate, check_results_dir                 harness.py: score a predictor, write its result
    score, summarise, headline, colour          metrics.py: the reference's metrics and colours
    fit_predictor, run_baselines                baselines.py: fit on a bounded train split
    read_results, rows                          leaderboard.py: gather result files
"""

import importlib

_WHERE = {
    "evaluate": "harness", "check_results_dir": "harness",
    "score": "metrics", "summarise": "metrics", "headline": "metrics", "colour": "metrics",
    "fit_predictor": "baselines", "run_baselines": "baselines",
    "read_results": "leaderboard", "rows": "leaderboard",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
