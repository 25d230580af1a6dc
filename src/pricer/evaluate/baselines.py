"""The classical baselines (`pricer baselines`): each fitted on the bounded train split
(`pricer.predict.fit`), saved, and scored by the harness."""

from __future__ import annotations

from pathlib import Path

from pricer.data.store import price_bounds
from pricer.errors import PricerError
from pricer.predict.fit import fit_predictor

BASELINES = ("random", "constant", "features-lr", "bow-lr", "embed-lr", "embed-svr", "embed-rf",
             "dnn")


def run_baselines(train_items, test_items, chosen, results_dir: str | Path, eval_size: int | None = 250,
                  seed: int = 42, bounds: tuple[float, float] | None = None,
                  progress=None, on_result=None, balance_prices: bool = False,
                  prices_like: list[float] | None = None) -> list[dict]:
    """Fit each chosen baseline on the train items, save the learnt ones (RESULTS/models/KIND.skops;
    dnn: RESULTS/models/dnn.safetensors),
    evaluate each on the first `eval_size` test items (None: all) and write its result once.
    `balance_prices`: the learnt ones weight train items so every price band counts the same
    (named KIND-balanced); `prices_like` (prices of items like the test's): weighted towards
    that price mix instead (named KIND-shifted; pricer.data.balance).

    `progress(kind, stage, done, total)` reports "fitting"/"evaluating" (done/total may be None);
    `on_result(result)` is called after each baseline. Returns the results."""
    from pricer.evaluate.harness import check_results_dir, evaluate
    from pricer.predict.baselines import KINDS
    from pricer.predict.registry import make_predictor

    unknown = [k for k in chosen if k not in BASELINES]
    if unknown:
        raise PricerError(f"unknown baseline {', '.join(unknown)} (choose from {', '.join(BASELINES)})")
    if eval_size is not None and eval_size < 1:
        raise PricerError(f"--eval-size must be at least 1, got {eval_size}")
    check_results_dir(results_dir)
    bounds = bounds or price_bounds()
    report = progress or (lambda *args: None)
    results = []
    for kind in chosen:
        learns = kind in KINDS or kind == "dnn"
        predictor = (make_predictor(kind, seed=seed, balance_prices=balance_prices or None,
                                    prices_like=prices_like)
                     if learns else make_predictor(kind, seed=seed) if kind == "random"
                     else make_predictor(kind))
        fit = None
        if predictor.needs_fit:
            report(kind, "fitting", None, None)
            fit = fit_predictor(predictor, train_items, bounds,
                                progress=lambda done, total, k=kind: report(k, "fitting", done, total))
        if learns:  # the learnt baselines (not random/constant) are kept
            suffix = ".safetensors" if kind == "dnn" else ".skops"
            predictor.save(Path(results_dir) / "models" / f"{predictor.name}{suffix}")
        report(kind, "evaluating", None, None)
        result = evaluate(predictor, test_items, size=eval_size, results_dir=results_dir,
                          show=False, batch_size=eval_size or len(test_items),
                          max_price=bounds[1], extra={"fit": fit} if fit else None)
        results.append(result)
        if on_result:
            on_result(result)
    return results
