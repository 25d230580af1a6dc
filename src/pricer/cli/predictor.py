"""The predictor a command names, built one way by `pricer eval`, `predict`, `serve` and `deals`
(and benchmarks/bench_serve.py): `--predictor NAME`, the options given as their own flags and
`--opt key=value` (text: the registry converts each to its option's type), fitted on `--train`
when it learns (constant without a value, the baseline kinds, dnn). No printing: the command
shows the stages it is told (`status`) and what the fit left out."""

from pathlib import Path

from pricer.errors import PricerError


def names_help(what: str) -> str:
    """`what`, then the registry's predictor names: --help lists what the registry holds."""
    from pricer.predict.registry import names

    return f"{what}: {', '.join(names())}."


def options_of(pairs: list[str] | None, flags: dict) -> dict:
    """The options given as their own flags (None: not given) merged with --opt key=value pairs."""
    options = {k: v for k, v in flags.items() if v is not None}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise PricerError(f"--opt {pair!r}: write it as key=value (e.g. --opt branches=4)")
        if key in options:
            raise PricerError(f"option {key} is given twice (as its own flag and as --opt, or twice)")
        options[key] = value
    return options


def train_items(data: str | None, train: str | None, max_items: int | None = None):
    """The train split: --train (file or saved data set), else the train split of a saved --data
    folder; None when there is neither."""
    from pricer.data.items import read_items

    if max_items is not None and max_items < 0:
        raise PricerError(f"--max-items must be 0 or more, got {max_items}")
    if train:
        return read_items(train, split="train")[:max_items]
    if data and Path(data).is_dir():
        return read_items(data, split="train")[:max_items]
    return None


def build_predictor(name: str, flags: dict, opt: list[str] | None = None, *,
                    train: str | None = None, data: str | None = None,
                    max_items: int | None = None, status=None):
    """(predictor, fit): predictor `name` made by the registry from `flags` and `opt`, fitted on
    the train split (`train_items(data, train, max_items)`) when it learns. `fit` is what
    `pricer.evaluate.baselines.fit_predictor` returns (None: nothing was fitted); `status(text)`
    is told each stage."""
    from pricer.data.store import price_bounds
    from pricer.evaluate.baselines import fit_predictor
    from pricer.predict.registry import make_predictor

    say = status or (lambda text: None)
    options = options_of(opt, flags)
    say(f"loading {name}")
    predictor = make_predictor(name, **options)
    if not predictor.needs_fit:
        return predictor, None
    items = train_items(data, train, max_items)
    if not items:
        where = "--train FILE" + (" or a saved data set as --data" if data is not None else "")
        if name == "constant":
            raise PricerError(f"constant needs a train split to learn its mean ({where}), or a "
                              "price: --opt value=PRICE")
        raise PricerError(f"{name} must be fitted first and needs a train split ({where}), or "
                          "give a saved one: --predictor baseline --path FILE (pricer baselines "
                          "saves them)")
    say(f"fitting {name} on {len(items):,} train items")
    return predictor, fit_predictor(predictor, items, price_bounds(train or data))


def fit_note(fit: dict | None) -> str | None:
    """The line to show when the fit left train items out (outside the curation price bounds)."""
    if not fit or not fit["dropped"]:
        return None
    counts = ", ".join(f"{n} {reason}" for reason, n in fit["dropped"].items())
    return f"fit: {sum(fit['dropped'].values())} train items left out ({counts})"
