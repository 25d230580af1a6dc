"""Evaluation: the reference's yardstick, the harness, the baselines run and the leaderboard.

Public surface, imported lazily (no scikit-learn or matplotlib at `pricer --help`):
    evaluate, check_results_dir                 harness.py: score a predictor, write its result
    run_baselines                               baselines.py: fit, save and score the baselines
(the metrics are pricer.predict.metrics, fitting pricer.predict.fit: the ensemble uses them too)
    read_results, rows                          leaderboard.py: gather result files
"""

import importlib

_WHERE = {
    "evaluate": "harness", "check_results_dir": "harness",
    "run_baselines": "baselines",
    "read_results": "leaderboard", "rows": "leaderboard",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
