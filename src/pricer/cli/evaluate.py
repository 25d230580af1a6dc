"""`pricer eval`, `pricer baselines`, `pricer leaderboard` (issue 3)."""

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.errors import PricerError

DEFAULT_RESULTS = Path("results")


def _train_items(data: str, train: str | None):
    """The train split: --train (file or saved data set), else the train split of a saved --data."""
    from pricer.data.items import read_items

    if train:
        return read_items(train, split="train")
    if Path(data).is_dir():
        return read_items(data, split="train")
    return None


def _needs_fit(predictor) -> bool:
    from pricer.predict.baselines import Baseline
    from pricer.predict.simple import ConstantPredictor

    return (isinstance(predictor, ConstantPredictor) and predictor.value is None) or (
        isinstance(predictor, Baseline) and predictor.model is None)


def eval_command(
    data: Annotated[str, typer.Option(help="Test data: a .jsonl/.csv/.parquet file with text and "
                                           "price, or a saved data set folder (its test split).")],
    predictor: Annotated[str, typer.Option(help="constant, random, guesses, baseline, frontier, "
                                                "greedy, topk, expected, or a baseline kind "
                                                "(features-lr, bow-lr, embed-lr, embed-svr, embed-rf).")],
    size: Annotated[int, typer.Option(help="Evaluate the first N items (the reference: 250).")] = 250,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout, "
                                                          "tables on stderr.")] = False,
    results: Annotated[Path, typer.Option(help="Folder for the result JSON and chart.")] = DEFAULT_RESULTS,
    train: Annotated[Optional[str], typer.Option(help="Train data (file or saved data set) for "
                                                      "predictors that learn (constant mean, baselines).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name shown in tables and the leaderboard.")] = None,
    value: Annotated[Optional[float], typer.Option(help="constant: the price.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random: the seed (42).")] = None,
    guesses: Annotated[Optional[Path], typer.Option(help="guesses: CSV with id,guess.")] = None,
    path: Annotated[Optional[Path], typer.Option(help="baseline: a saved baseline file.")] = None,
    model: Annotated[Optional[str], typer.Option(help="LLM: base model ('default', folder or Hub id).")] = None,
    adapter: Annotated[Optional[str], typer.Option(help="LLM: LoRA adapter folder.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="LLM: auto, fp32, bf16, 8bit, 4bit.")] = None,
    device: Annotated[Optional[str], typer.Option(help="LLM: cpu, cuda, ...")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Items per predict call.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="frontier: OpenAI-compatible API base URL.")] = None,
    api_model: Annotated[Optional[str], typer.Option(help="frontier: the model name at the API.")] = None,
) -> None:
    """Evaluate a predictor on the first N test items, the reference's way."""
    from rich.console import Console

    from pricer.data.items import read_items
    from pricer.evaluate.harness import evaluate
    from pricer.predict.registry import make_predictor

    console = Console(stderr=True) if json_out else Console()
    if batch_size is not None and batch_size < 1:
        raise PricerError(f"--batch-size must be at least 1, got {batch_size}")
    items = read_items(data, split="test")
    if not items:
        raise PricerError(f"{data}: the test split is empty")
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        p = make_predictor(predictor, value=value, seed=seed, guesses=guesses, path=path,
                           model=model, adapter=adapter, precision=precision, device=device,
                           batch_size=batch_size, base_url=base_url, api_model=api_model)
        if _needs_fit(p):
            train_items = _train_items(data, train)
            if train_items is None:
                raise PricerError(f"{predictor}: needs a train split (--train FILE or a saved "
                                  "data set as --data)" + (" or --value" if predictor == "constant" else ""))
            with console.status(f"fitting {predictor} on {len(train_items):,} train items"):
                p.fit(train_items)
        result = evaluate(p, items, size=size, name=name, results_dir=results, console=console,
                          batch_size=batch_size)
    if json_out:
        sys.stdout.write(json.dumps({k: v for k, v in result.items() if k != "items"},
                                    allow_nan=False, default=str) + "\n")
    else:
        console.print(f"result: {result['file']}  chart: {result['chart']}", highlight=False,
                      soft_wrap=True)


def baselines(
    data: Annotated[Optional[str], typer.Option(help="A saved data set folder (train and test splits).")] = None,
    train: Annotated[Optional[str], typer.Option(help="Train file (JSONL/CSV/Parquet) or data set.")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test file (JSONL/CSV/Parquet) or data set.")] = None,
    out: Annotated[Path, typer.Option(help="Results folder; fitted models go to OUT/models/.")] = DEFAULT_RESULTS,
    size: Annotated[int, typer.Option(help="Evaluate on the first N test items.")] = 250,
    train_size: Annotated[Optional[int], typer.Option(help="Use only the first N train items.")] = None,
    only: Annotated[Optional[str], typer.Option(help="Comma-separated subset, e.g. constant,bow-lr.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of random and of the learners.")] = 42,
) -> None:
    """Train the classical baselines on the train split, save them, evaluate them on the test split."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pricer.data.items import read_items
    from pricer.evaluate import leaderboard as lb
    from pricer.evaluate.harness import evaluate
    from pricer.predict.baselines import KINDS, Baseline
    from pricer.predict.simple import ConstantPredictor, RandomPredictor

    if not (data or (train and test)):
        raise PricerError("give --data (a saved data set) or both --train and --test files")
    if not train and Path(data).is_file():
        raise PricerError(f"{data} is a file, not a saved data set with a train split: give --train")
    train_items = read_items(train or data, split="train")[:train_size]
    test_items = read_items(test or data, split="test")
    if not train_items:
        raise PricerError("the train split is empty")
    if not test_items:
        raise PricerError("the test split is empty")
    wanted = ("random", "constant") + KINDS
    chosen = [k.strip() for k in only.split(",")] if only else list(wanted)
    unknown = [k for k in chosen if k not in wanted]
    if unknown:
        raise PricerError(f"unknown baseline {', '.join(unknown)} (choose from {', '.join(wanted)})")

    console = Console()
    console.print(f"{len(train_items):,} train items, first {min(size, len(test_items))} of "
                  f"{len(test_items):,} test items; results in {out}/", highlight=False)
    results = []
    with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        overall = progress.add_task("baselines", total=len(chosen))
        step = progress.add_task("", total=None)
        for kind in chosen:
            progress.update(step, description=f"fitting {kind}", completed=0, total=None)

            def advance(done, total, task=step):
                progress.update(task, completed=done, total=total)

            start = time.perf_counter()
            if kind == "random":
                predictor = RandomPredictor(seed)
            elif kind == "constant":
                predictor = ConstantPredictor().fit(train_items)
            else:
                predictor = Baseline(kind, seed=seed).fit(train_items, progress=advance)
                predictor.save(out / "models" / f"{kind}.joblib")
            fit_seconds = time.perf_counter() - start
            progress.update(step, description=f"evaluating {kind}", completed=0, total=None)
            result = evaluate(predictor, test_items, size=size, results_dir=out, show=False,
                              console=console, batch_size=size)
            result["timing"]["fit_seconds"] = fit_seconds
            Path(result["file"]).write_text(json.dumps(result, indent=1, allow_nan=False, default=str))
            results.append(result)
            progress.console.print(f"  {kind:<12} error ${result['error']:,.2f}  RMSLE "
                                   f"{result['rmsle']:.2f}  hits {result['hits']:.1f}%  "
                                   f"(fit {fit_seconds:.1f} s, predict "
                                   f"{result['timing']['seconds']:.1f} s)", highlight=False,
                                   soft_wrap=True)
            progress.advance(overall)
        progress.remove_task(step)
    board = lb.rows(results)
    console.print(lb.table(board, title="baselines"))
    chart = lb.bar_chart(board, out / "baselines.png")
    console.print(f"models in {out / 'models'}/, chart {chart}; see all with: pricer leaderboard "
                  f"--results {out}", highlight=False)


def leaderboard(
    results: Annotated[Path, typer.Option(help="Folder of result JSONs (searched recursively).")] = DEFAULT_RESULTS,
    chart: Annotated[Optional[Path], typer.Option(help="Bar chart PNG (default RESULTS/leaderboard.png).")] = None,
    reference: Annotated[Optional[bool], typer.Option(
        "--reference/--no-reference", help="Show the reference's published figures "
                                           "(default: when a result is on the reference's data).")] = None,
) -> None:
    """Gather every result into one table (sorted by error) and one comparison chart."""
    from rich.console import Console

    from pricer.evaluate import leaderboard as lb

    if not results.is_dir():
        raise PricerError(f"{results}: no such results folder (run pricer eval or pricer baselines)")
    found, warnings = lb.read_results(results)
    console = Console()
    for w in warnings:
        console.print(f"[yellow]skipped {w}[/]", highlight=False)
    if not found:
        raise PricerError(f"{results}: no result files yet (run pricer eval or pricer baselines)")
    board = lb.rows(found, with_reference=reference)
    console.print(lb.table(board, title=f"leaderboard ({len(found)} results in {results})"))
    path = lb.bar_chart(board, chart or results / "leaderboard.png")
    console.print(f"chart: {path}", highlight=False)
