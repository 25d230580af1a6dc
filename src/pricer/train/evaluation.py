"""Evaluate a finished run with the evaluation harness, the way `pricer eval` does."""

from pathlib import Path

from pricer.train.config import TrainConfig


def eval_items_source(config: TrainConfig) -> str | None:
    """--eval-data, else the test split of a saved data set; a plain file has no test split."""
    if config.eval_data:
        return config.eval_data
    if config.data and Path(config.data).is_dir():
        return config.data
    return None


def evaluate_run(config: TrainConfig, out: Path, show: bool = True) -> dict:
    """{"evaluation": result, "eval_data": source} for the run card, or an "eval_note"."""
    from pricer.data.items import read_items
    from pricer.evaluate.harness import evaluate
    from pricer.predict.registry import make_predictor

    source = eval_items_source(config)
    if source is None:
        return {"eval_note": "skipped: the data is a plain file with no test split "
                             "(give --eval-data FILE)"}
    items = read_items(source, split="test")
    predictor = make_predictor(config.eval_predictor, model=config.model, adapter=str(out))
    result = evaluate(predictor, items, size=config.eval_size, name=f"{out.name} ({config.eval_predictor})",
                      results_dir=config.results_dir, show=show)
    keep = ("predictor", "n", "error", "rmsle", "hits", "settings")
    return {"evaluation": {k: result[k] for k in keep if k in result}, "eval_data": source}
