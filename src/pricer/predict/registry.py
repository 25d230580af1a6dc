"""Every predictor by name, so that `pricer eval` and training's evaluation build them one way.

constant, random, guesses: simple.py; baseline (a saved one, --path) and the baseline kinds
(features-lr, bow-lr, embed-lr, embed-svr, embed-rf: fitted on --train): baselines.py;
frontier: frontier.py; greedy, topk, expected: the local LLM (pricer.predict.llm).
"""

from pricer.errors import PricerError

LLM_METHODS = ("greedy", "topk", "expected")
SIMPLE = ("constant", "random", "guesses", "baseline", "frontier")


def names() -> tuple[str, ...]:
    from pricer.predict.baselines import KINDS

    return SIMPLE + KINDS + LLM_METHODS


def make_predictor(name: str, **options):
    """A predictor from its name and options (value, seed, guesses, path, model, adapter,
    precision, device, batch_size, base_url, api_model, api_key). Options left None are unset."""
    o = {k: v for k, v in options.items() if v is not None}
    if name == "constant":
        from pricer.predict.simple import ConstantPredictor

        return ConstantPredictor(o.get("value"))
    if name == "random":
        from pricer.predict.simple import RandomPredictor

        return RandomPredictor(o.get("seed", 42))
    if name == "guesses":
        from pricer.predict.simple import GuessesPredictor

        if "guesses" not in o:
            raise PricerError("guesses: give the CSV file with --guesses FILE.csv (columns id,guess)")
        return GuessesPredictor(o["guesses"])
    if name == "baseline":
        from pricer.predict.baselines import load_baseline

        if "path" not in o:
            raise PricerError("baseline: give the saved baseline with --path FILE")
        return load_baseline(o["path"])
    if name == "frontier":
        from pricer.predict.frontier import FrontierPredictor

        return FrontierPredictor(o.get("api_model") or o.get("model"), base_url=o.get("base_url"),
                                 api_key=o.get("api_key"), seed=o.get("seed", 42))
    if name in LLM_METHODS:
        from pricer.predict.llm import load_llm_predictor

        return load_llm_predictor(name, model=o.get("model", "default"), adapter=o.get("adapter"),
                                  precision=o.get("precision", "auto"), device=o.get("device"),
                                  batch_size=o.get("batch_size", 16))
    from pricer.predict.baselines import KINDS, Baseline

    if name in KINDS:
        return Baseline(name, seed=o.get("seed", 42))
    raise PricerError(f"unknown predictor '{name}' (choose from {', '.join(names())})")
