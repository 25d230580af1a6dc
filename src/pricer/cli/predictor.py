"""The predictor a command names, built one way by `pricer eval`, `predict`, `serve` and `deals`
(and benchmarks/bench_serve.py): `--predictor NAME`, the options given as their own flags and
`--opt key=value` (text: the registry converts each to its option's type), or `--run PATH`: the
predictor that what the path holds calls for (a head run: head; a LoRA run: its eval predictor;
an ensemble .json: ensemble; a saved baseline .skops/.safetensors: baseline; a .gguf: gguf).
Fitted on `--train` when it learns (constant without a value, the baseline kinds, dnn). No
printing: the command shows the stages it is told (`status`) and what the fit left out."""

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.errors import PricerError


def names_help(what: str) -> str:
    """`what`, then the registry's predictor names: --help lists what the registry holds."""
    from pricer.predict.registry import names

    return f"{what}: {', '.join(names())}."


# The flags that choose a predictor, the same in every command that builds one (docs/cli.md).
# `with_predictor_flags` adds them to a command; it receives them in **chosen.
FLAGS = {
    "predictor": Annotated[Optional[str], typer.Option(
        "--predictor", "-p", help=names_help("The predictor (default: greedy, or what --run holds)"))],
    "run": Annotated[Optional[str], typer.Option(
        "--run", "-r", help="A run folder (or an ensemble .json, a saved baseline, a .gguf): the "
                            "predictor it calls for, with its settings (`pricer runs` lists them).")],
    "opt": Annotated[Optional[list[str]], typer.Option(
        "--opt", help="Any option of the predictor as key=value (repeatable), e.g. --opt value=77, "
                      "--opt branches=4.")],
    "model": Annotated[Optional[str], typer.Option(
        "--model", "-m", help="LLM, head: the base model ('default', a folder or a Hub id).")],
    "adapter": Annotated[Optional[str], typer.Option(
        help="LLM: LoRA adapter folder; head: the run (or give --run).")],
    "path": Annotated[Optional[Path], typer.Option(
        help="baseline: a saved baseline (.skops, dnn .safetensors); ensemble: its weights JSON; "
             "gguf: the GGUF file; frontier-rag: its index folder.")],
    "value": Annotated[Optional[float], typer.Option(help="constant: the price (= --opt value=V).")],
    "train": Annotated[Optional[str], typer.Option(
        "--train", "-t", help="Train data (file or saved data set) to fit a predictor that learns "
                              "(constant's mean, the baselines), before it is used.")],
    "max_items": Annotated[Optional[int], typer.Option(help="Fit on the first N train items only.")],
}


def with_predictor_flags(command=None, *, without: tuple[str, ...] = ()):
    """`command` with FLAGS (less `without`) added to its options, after its own; it receives
    them in **chosen. `@with_predictor_flags` or `@with_predictor_flags(without=(...))`."""
    if command is None:
        return lambda command: with_predictor_flags(command, without=without)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(command).parameters.values()
           if p.kind != inspect.Parameter.VAR_KEYWORD]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
             for name, kind in FLAGS.items() if name not in without]
    command.__signature__ = inspect.Signature(own + added)
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
    return command


def chosen_predictor(chosen: dict, more: dict | None = None, *, data: str | None = None,
                     status=None):
    """(predictor, fit) of the FLAGS a command received (`more`: its own predictor flags)."""
    flags = {k: chosen[k] for k in ("model", "adapter", "path", "value")} | (more or {})
    return build_predictor(chosen["predictor"], flags, chosen["opt"], train=chosen["train"],
                           data=data, max_items=chosen.get("max_items"), status=status,
                           run=chosen["run"])


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


FILE_PREDICTORS = {".json": "ensemble", ".skops": "baseline", ".safetensors": "baseline",
                   ".gguf": "gguf"}


def for_run(run: str, name: str | None) -> tuple[str, dict]:
    """(predictor name, options) for `--run PATH`: what the path holds decides; a `name` given
    too must fit it (greedy on a head run is refused with one line)."""
    from pricer.models.run import Run

    path = Path(run)
    if path.is_file():
        found = FILE_PREDICTORS.get(path.suffix)
        if found is None:
            raise PricerError(f"--run {run}: a file pricer cannot price with (it reads a run "
                              f"folder, or {', '.join(FILE_PREDICTORS)} files)")
        if name not in (None, found):
            raise PricerError(f"--run {run} is read by --predictor {found}, not {name}")
        return found, {"path": str(path)}
    if not path.is_dir():
        raise PricerError(f"--run {run}: no such run folder or model file")
    folder = Run(path)
    holds = folder.holds()
    if holds is None:
        ensembles = sorted(path.glob("*.json"))
        if len(ensembles) == 1 and name in (None, "ensemble"):
            return "ensemble", {"path": str(ensembles[0])}
        raise PricerError(f"--run {run}: holds no model pricer can price with (no adapter, head "
                          "or ensemble file); `pricer runs` lists the runs")
    config = folder.config()
    base = {"adapter": str(path), "model": config.get("model", "default")}
    if holds == "head":
        if name not in (None, "head"):
            folder.refuse_head(name)
        return "head", base
    if name == "head":
        raise PricerError(f"--run {run}: a LoRA run that writes its price; --predictor head reads "
                          "runs trained with --head regression (use greedy, topk or expected)")
    chosen = config.get("eval_predictor")  # what the run was evaluated with after training
    return name or (chosen if chosen not in (None, "auto", "head") else "greedy"), base


def build_predictor(name: str | None, flags: dict, opt: list[str] | None = None, *,
                    train: str | None = None, data: str | None = None,
                    max_items: int | None = None, status=None, run: str | None = None):
    """(predictor, fit): predictor `name` (None: greedy, or what `run` holds) made by the
    registry from `flags`, `opt` and `run`, fitted on the train split (`train_items(data,
    train, max_items)`) when it learns. `fit` is what `pricer.predict.fit.fit_predictor`
    returns (None: nothing was fitted); `status(text)` is told each stage."""
    from pricer.data.store import price_bounds
    from pricer.predict.fit import fit_predictor
    from pricer.predict.registry import make_predictor

    say = status or (lambda text: None)
    options = options_of(opt, flags)
    if run is not None:
        name, from_run = for_run(run, name)
        clash = sorted(k for k in from_run if k in options and k != "model")
        if clash:
            raise PricerError(f"--run gives the {clash[0]}; leave out --{clash[0]}")
        options = from_run | options  # --model may point the run at a local copy of its base
    name = name or "greedy"
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
