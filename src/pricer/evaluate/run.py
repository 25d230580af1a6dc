"""Evaluate a finished training run: its adapter, scored by the harness the way `pricer eval`
does, and recorded in its run card with who evaluated it. The one place this is done
(`pricer train` and `pricer demo` both call `evaluate_run`)."""

from pathlib import Path

from pricer.errors import PricerError


def eval_source(data: str | None, eval_data: str | None) -> str | None:
    """--eval-data, else the test split of a saved data set; a plain file has no test split."""
    if eval_data:
        return str(eval_data)
    if data and Path(data).is_dir():
        return str(data)
    return None


def eval_items(data: str | None, eval_data: str | None):
    """(source, test items) to evaluate on, or (None, None) when there are none. Called before
    training too, so that missing or unreadable evaluation data fails before the first step."""
    from pricer.data.items import read_items

    source = eval_source(data, eval_data)
    if source is None:
        return None, None
    items = read_items(source, split="test")
    if not items:
        raise PricerError(f"{source}: no test items to evaluate on")
    return source, items


def evaluate_run(run_dir: str | Path, items=None, *, eval_data: str | None = None,
                 predictor: str | None = None, model: str | None = None, size: int | None = None,
                 results_dir: str | Path | None = None, name: str | None = None,
                 by: str = "pricer train", show: bool = True, console=None,
                 progress: bool | None = None) -> dict | None:
    """Score the adapter in `run_dir` with `pricer.evaluate.harness.evaluate` and record the
    result in its run card. Settings not given come from the run's train_config.yaml
    (eval_predictor, model, eval_size, results_dir, eval_data or the data set's test split).
    Returns the harness's result, or None when there is nothing to evaluate on (a plain
    training file and no eval_data): the run card then says so."""
    from pricer.evaluate.harness import evaluate
    from pricer.models.run import Run
    from pricer.predict.registry import make_predictor

    run = Run(run_dir)
    saved = run.need_config()
    predictor = predictor or saved.get("eval_predictor", "greedy")
    if items is None:
        eval_data, items = eval_items(saved.get("data"), eval_data or saved.get("eval_data"))
        if items is None:
            run.record_evaluation(None, None, by, note="skipped: the data is a plain file with no "
                                  "test split (give --eval-data FILE)")
            return None
    scorer = make_predictor(predictor, model=model or saved.get("model", "default"),
                            adapter=str(run.folder))
    from pricer.data.store import price_bounds

    result = evaluate(scorer, items, size=size if size is not None else saved.get("eval_size", 250),
                      max_price=price_bounds(eval_data)[1],
                      name=name or f"{run.name} ({predictor})",
                      results_dir=results_dir or saved.get("results_dir"), show=show,
                      console=console, progress=progress)
    keep = ("predictor", "n", "error", "rmsle", "hits", "settings", "file")
    run.record_evaluation({k: result[k] for k in keep if k in result},
                          eval_data or "(given items)", by)
    return result
