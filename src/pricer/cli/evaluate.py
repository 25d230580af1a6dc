"""`pricer eval`, `pricer baselines`, `pricer leaderboard` (issue 3), `pricer chart`,
`pricer ensemble` (issue 10)."""

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.predictor import chosen_predictor, fit_note, with_predictor_flags
from pricer.cli.predictor import train_items as _train_items
from pricer.errors import PricerError

DEFAULT_RESULTS = Path("results")
SUMMARIES_HELP = ("Also write each result's summary, without the per-item rows, to "
                  "DIR/<predictor>.json (pricer leaderboard --summaries DIR prints them).")


def typed_command(ctx: typer.Context) -> str:
    """The command as a user would type it again: `pricer <command>` and the flags given on the
    command line (defaults left out), in the command's own order, quoted for a shell."""
    import shlex

    from typer._click.core import ParameterSource

    words = ["pricer", ctx.info_name or ""]
    for param in ctx.command.params:
        if not param.opts or ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params.get(param.name)
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if getattr(param, "is_flag", False):
            if value:
                words.append(flag)
            elif param.secondary_opts:
                words.append(param.secondary_opts[0])
            continue
        for one in value if isinstance(value, (list, tuple)) else [value]:
            words += [flag, shlex.quote(str(one))]
    return " ".join(words)


def write_summaries(found: list[dict], folder: Path, data: str, command: str, console) -> None:
    """--summaries: each result's summary to FOLDER, one line each on `console`."""
    from pricer.evaluate.summary import summary_of, write_summary

    for result in found:
        path, replaced = write_summary(summary_of(result, data, command=command), folder)
        console.print(f"summary: {path}{' (replaced the previous one)' if replaced else ''}",
                      highlight=False, soft_wrap=True)


def eval_size_of(text: str, flag: str = "--eval-size") -> int | None:
    """--eval-size as given: a whole number >= 1, or "all" (None: the whole split)."""
    if str(text).strip().lower() == "all":
        return None
    try:
        size = int(str(text).strip())
    except ValueError:
        raise PricerError(f"{flag} must be a whole number or 'all', got {text!r}") from None
    if size < 1:
        raise PricerError(f"{flag} must be at least 1 (or 'all'), got {size}")
    return size


@with_predictor_flags
def eval_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Option(
        "--data", "-d", "--test", help="Test data: a .jsonl/.csv/.parquet file with text and "
                                       "price, or a saved data set folder (its test split).")],
    eval_size: Annotated[str, typer.Option("--eval-size", "--size",
                                           help="Evaluate the first N items (the reference: 250), "
                                                "or 'all' for the whole split.")] = "250",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout, "
                                                          "tables on stderr.")] = False,
    results: Annotated[Path, typer.Option(help="Folder for the result JSON and chart.")] = DEFAULT_RESULTS,
    summaries: Annotated[Optional[Path], typer.Option(help=SUMMARIES_HELP)] = None,
    name: Annotated[Optional[str], typer.Option(help="Name shown in tables and the leaderboard.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random, baselines, frontier: the seed (42).")] = None,
    guesses: Annotated[Optional[Path], typer.Option(help="guesses: CSV with id,guess.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="LLM: auto (greedy on a CPU with fast bf16: checked; else bf16 where fast, fp16 on a GPU without bf16), fp32, bf16, fp16, 8bit, 4bit, checked (bf16, close decisions again in fp32: fp32's answers).")] = None,
    device: Annotated[Optional[str], typer.Option(help="LLM: cpu, cuda, ...")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Items per predict call (default: the "
                                                           "predictor's own).")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="frontier: OpenAI-compatible API base URL.")] = None,
    api_model: Annotated[Optional[str], typer.Option(help="frontier: the model name at the API.")] = None,
    **chosen,
) -> None:
    """Evaluate a predictor (by name, or a run) on the first N test items, the reference's way."""
    from rich.console import Console

    from pricer.data.items import read_items
    from pricer.data.store import price_bounds
    from pricer.evaluate.harness import check_results_dir, evaluate

    console = Console(stderr=True) if json_out else Console()
    size = eval_size_of(eval_size)
    if batch_size is not None and batch_size < 1:
        raise PricerError(f"--batch-size must be at least 1, got {batch_size}")
    check_results_dir(results)
    check_summaries_dir(summaries)
    if chosen["predictor"] is None and chosen["run"] is None:
        raise PricerError("give the predictor to score: --predictor NAME or --run PATH")
    more = {"seed": seed, "guesses": guesses, "precision": precision, "device": device,
            "base_url": base_url, "api_model": api_model}
    items = read_items(data, split="test")
    if not items:
        raise PricerError(f"{data}: the test split is empty")
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        with console.status(f"loading {chosen['predictor'] or chosen['run']}") as status:
            p, fit = chosen_predictor(chosen, more, data=data, status=status.update)
        if note := fit_note(fit):
            console.print(f"[yellow]{note}[/]", highlight=False, soft_wrap=True)
        result = evaluate(p, items, size=size, name=name, results_dir=results, console=console,
                          max_price=price_bounds(data)[1],
                          batch_size=batch_size, extra={"fit": fit} if fit else None)
    if json_out:
        sys.stdout.write(json.dumps({k: v for k, v in result.items() if k != "items"},
                                    allow_nan=False, default=str) + "\n")
    else:
        console.print(f"result: {result['file']}  charts: {result['chart']}, "
                      f"{result['bands_chart']}", highlight=False, soft_wrap=True)
    if summaries is not None:
        write_summaries([result], summaries, data, typed_command(ctx), console)


def _counts(counts: dict) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.items())



def _prices_like(balance_prices: bool, path: str | None) -> list[float] | None:
    """The prices --prices-like PATH reads (None without it), checked before any work."""
    if balance_prices and path:
        raise PricerError("choose one of --balance-prices and --prices-like")
    from pricer.data.balance import prices_like

    return prices_like(path) if path else None


def baselines(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="A saved data set folder (train and test splits).")] = None,
    train: Annotated[Optional[str], typer.Option("--train", "-t", help="Train file (JSONL/CSV/Parquet) or data set.")] = None,
    test: Annotated[Optional[str], typer.Option(help="Test file (JSONL/CSV/Parquet) or data set.")] = None,
    results: Annotated[Path, typer.Option(help="Results folder; fitted models go to RESULTS/models/.")] = DEFAULT_RESULTS,
    summaries: Annotated[Optional[Path], typer.Option(help=SUMMARIES_HELP)] = None,
    eval_size: Annotated[str, typer.Option(help="Evaluate on the first N test items, or 'all'.")] = "250",
    max_items: Annotated[Optional[int], typer.Option(help="Use only the first N train items.")] = None,
    only: Annotated[Optional[str], typer.Option(help="Comma-separated subset, e.g. constant,bow-lr.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of random and of the learners.")] = 42,
    balance_prices: Annotated[bool, typer.Option(
        help="Weight train items so that every price band counts the same (the learnt "
             "baselines, saved and named KIND-balanced).")] = False,
    prices_like: Annotated[Optional[str], typer.Option(
        help="Weight train items so that their price bands weigh like this file's items (e.g. "
             "train items known to be like the test split; only their prices are read; saved "
             "and named KIND-shifted).")] = None,
    holdout: Annotated[int, typer.Option(
        help="Leave out the validation slice of pricer ensemble --val-size N (same seeded "
             "carve, --seed), so the saved baselines can be ensemble members.")] = 0,
    holdout_pool: Annotated[int, typer.Option(
        help="That slice drawn from the first N train items only, as pricer ensemble "
             "--val-pool N; 0: from all.")] = 0,
) -> None:
    """Train the classical baselines on the train split, save them, evaluate them on the test split."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pricer.data.items import read_items
    from pricer.evaluate import leaderboard as lb
    from pricer.data.store import price_bounds
    from pricer.evaluate.baselines import BASELINES, run_baselines
    from pricer.predict.fit import train_split
    from pricer.evaluate.harness import check_results_dir

    if not (data or (train and test)):
        raise PricerError("give --data (a saved data set) or both --train and --test files")
    if not train and Path(data).is_file():
        raise PricerError(f"{data} is a file, not a saved data set with a train split: give --train")
    size = eval_size_of(eval_size)
    check_results_dir(results)
    check_summaries_dir(summaries)
    chosen = [k.strip() for k in only.split(",")] if only else list(BASELINES)
    unknown = [k for k in chosen if k not in BASELINES]
    if unknown:
        raise PricerError(f"unknown baseline {', '.join(unknown)} (choose from {', '.join(BASELINES)})")
    if holdout < 0 or holdout_pool < 0:
        raise PricerError(f"--holdout and --holdout-pool must be 0 or more, got {holdout} and "
                          f"{holdout_pool}")
    like = _prices_like(balance_prices, prices_like)
    train_items = _train_items(data, train, None if holdout else max_items)
    if not train_items:
        raise PricerError("the train split is empty")
    if holdout:  # the ensemble's validation slice stays unseen
        from pricer.data.validation import without_slice

        train_items = without_slice(train_items, holdout, max_items, seed, holdout_pool)
    test_items = read_items(test or data, split="test")
    if not test_items:
        raise PricerError("the test split is empty")
    bounds = price_bounds(train or data)
    kept, _, dropped = train_split(train_items, bounds)

    console = Console()
    console.print(f"{len(kept):,} train items, first {min(size or len(test_items), len(test_items))} of "
                  f"{len(test_items):,} test items; results in {results}/", highlight=False)
    if dropped:
        console.print(f"[yellow]{sum(dropped.values())} train items left out, outside the price "
                      f"bounds ${bounds[0]:g}-${bounds[1]:g} of curation ({_counts(dropped)})[/]",
                      highlight=False, soft_wrap=True)
    with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        overall = progress.add_task("baselines", total=len(chosen))
        step = progress.add_task("", total=None)

        def show(kind, stage, done, total):
            progress.update(step, description=f"{stage} {kind}", completed=done or 0, total=total)

        def done(result):
            fit = result.get("fit") or {}
            low, high = result["error_ci"]
            progress.console.print(f"  {result['predictor']:<12} error ${result['error']:,.2f} "
                                   f"(95% CI ${low:,.2f}-${high:,.2f})  "
                                   f"RMSLE {result['rmsle']:.2f}  hits {result['hits']:.1f}%  "
                                   f"(fit {fit.get('seconds', 0):.1f} s, predict "
                                   f"{result['timing']['seconds']:.1f} s)", highlight=False,
                                   soft_wrap=True)
            progress.advance(overall)

        found = run_baselines(train_items, test_items, chosen, results, eval_size=size,
                              seed=seed, bounds=bounds, progress=show, on_result=done,
                              balance_prices=balance_prices, prices_like=like)
        progress.remove_task(step)
    board = lb.rows(found)  # one test split, so one board
    console.print(lb.table(board, title="baselines"))
    chart = lb.bar_chart(board, results / "baselines.png", title="baselines")
    console.print(f"models in {results / 'models'}/, chart {chart}; see all with: pricer leaderboard "
                  f"--results {results}", highlight=False)
    if summaries is not None:
        write_summaries(found, summaries, test or data, typed_command(ctx), console)


def leaderboard(
    results: Annotated[Optional[Path], typer.Option(
        help="Folder of result JSONs (searched recursively; default: results).")] = None,
    summaries: Annotated[Optional[Path], typer.Option(
        help="Print the board from the summary files in DIR instead (pricer eval --summaries "
             "DIR writes them; docs/measurements/accuracy holds the docs' leaderboard).")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="Bar chart PNG (default RESULTS/leaderboard.png; "
                                                       "with --summaries: none unless given).")] = None,
    reference: Annotated[Optional[bool], typer.Option(
        "--reference/--no-reference", help="Show the reference's published figures "
                                           "(default: when a result is on the reference's data).")] = None,
) -> None:
    """Gather every result: one table (sorted by error, with 95 % intervals) and one chart per data
    set (same data fingerprint and size)."""
    from rich.console import Console

    from pricer.evaluate import leaderboard as lb

    if summaries is not None:
        if results is not None:
            raise PricerError("choose one of --results and --summaries")
        if reference:
            raise PricerError("--reference is for --results boards: the published figures are on "
                              "250 items, a summary board holds one data set")
        return _summary_boards(summaries, chart)
    results = results or DEFAULT_RESULTS
    if not results.is_dir():
        raise PricerError(f"{results}: no such results folder (run pricer eval or pricer baselines)")
    found, warnings = lb.read_results(results)
    console = Console()
    for w in warnings:
        console.print(f"[yellow]skipped {w}[/]", highlight=False)
    if not found:
        raise PricerError(f"{results}: no result files yet (run pricer eval or pricer baselines)")
    charts = []
    for number, board in enumerate(lb.boards(found, with_reference=reference), 1):
        console.print(lb.table(board["rows"], title=f"leaderboard: {board['title']}"))
        if number == 1:  # the largest data set keeps the familiar name
            path = chart or results / "leaderboard.png"
        else:
            path = (chart or results / "leaderboard.png").with_name(
                f"{(chart or results / 'leaderboard.png').stem}-{board['data']}-{board['size']}.png")
        charts.append(str(lb.bar_chart(board["rows"], path, title=f"pricer leaderboard: "
                                                                   f"{board['title']}")))
    console.print(f"{len(charts)} data set(s); chart(s): {', '.join(charts)}", highlight=False,
                  soft_wrap=True)


def check_summaries_dir(folder: Path | None) -> None:
    """Refuse a --summaries folder that is a file (before any work)."""
    if folder is not None and folder.exists() and not folder.is_dir():
        raise PricerError(f"{folder}: is a file, expected a folder for summaries")


def _summary_boards(folder: Path, chart: Path | None) -> None:
    """pricer leaderboard --summaries DIR: one board per data set, the chart only when asked."""
    from rich.console import Console

    from pricer.evaluate import leaderboard as lb
    from pricer.evaluate import summary

    found = summary.boards(summary.read_summaries(folder))
    console = Console()
    if not console.is_terminal:  # a file or a pipe: the whole board, not cut to 80 columns
        console = Console(width=max(console.width, 132))
    charts = []
    for number, board in enumerate(found, 1):
        console.print(summary.table(board))
        if chart is not None:
            path = chart if number == 1 else chart.with_name(
                f"{chart.stem}-{(board['fingerprint'] or summary.slug(board['name']))[:8]}-"
                f"{board['n']}{chart.suffix or '.png'}")
            charts.append(str(lb.bar_chart(board["rows"], path,
                                           title=f"pricer leaderboard: {board['title']}")))
    count = sum(len(b["rows"]) for b in found)
    console.print(f"{count} summary file(s) in {folder}, {len(found)} data set(s)"
                  + (f"; chart(s): {', '.join(charts)}" if charts else ""), highlight=False,
                  soft_wrap=True)


chart_app = typer.Typer(help="Charts of a training run or a data set (PNG files).",
                        no_args_is_help=True)


@chart_app.command("loss")
def chart_loss(
    run: Annotated[Path, typer.Argument(help="A training run folder (pricer train --out).")],
    out: Annotated[Optional[Path], typer.Option(help="The PNG to write (default RUN/loss.png).")] = None,
) -> None:
    """The training loss curve of a run (from its newest checkpoint, else its run card)."""
    from pricer.evaluate.charts import loss_curve
    from pricer.errors import writing

    target = out or run / "loss.png"
    with writing(target):
        path = loss_curve(run, target)
    typer.echo(f"chart: {path}")


@chart_app.command("prices")
def chart_prices(
    data: Annotated[str, typer.Argument(help="A saved data set folder (train and test splits).")],
    train: Annotated[Optional[str], typer.Option(help="Train file, when DATA is a test file.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="The PNG to write (default "
                                                     "RESULTS/prices.png).")] = None,
    results: Annotated[Path, typer.Option(help="Folder for the chart.")] = DEFAULT_RESULTS,
) -> None:
    """Train vs test price histogram of a data set (log price axis)."""
    from pricer.data.items import read_items
    from pricer.errors import writing
    from pricer.evaluate.charts import price_histogram

    train_items = _train_items(data, train) or []
    test_items = read_items(data, split="test", need_price=False)
    target = out or results / "prices.png"
    with writing(target):
        path = price_histogram([i.price for i in train_items], [i.price for i in test_items],
                               target, title=f"prices of {data}")
    typer.echo(f"chart: {path}")


def ensemble(
    member: Annotated[list[str], typer.Option(
        help="A member predictor, repeatable: a name, or name:key=value,... (e.g. constant, "
             "bow-lr, baseline:path=results/models/dnn.safetensors, greedy:adapter=runs/a).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The weights file (JSON) to write.")],
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="A saved data set folder (its train split).")] = None,
    train: Annotated[Optional[str], typer.Option("--train", "-t", help="Train file (JSONL/CSV/Parquet) or data set.")] = None,
    val_size: Annotated[int, typer.Option(help="Validation items carved from the train split "
                                               "(seeded shuffle) to fit the weights on.")] = 500,
    max_items: Annotated[Optional[int], typer.Option(help="Use only the first N train items.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the validation carve.")] = 42,
    val_pool: Annotated[int, typer.Option(
        help="Carve the slice from the first N train items only (e.g. 997: the test-like "
             "reference split at the start of amazon-pricer's train.jsonl); 0: from all. Members "
             "must leave out the same slice (pricer train/baselines --holdout-pool N).")] = 0,
    balance_prices: Annotated[bool, typer.Option(
        help="Weight the validation items so that every price band counts the same (as "
             "pricer train --balance-prices), for a train split cheaper than the test split.")] = False,
    prices_like: Annotated[Optional[str], typer.Option(
        help="Items (JSONL/CSV/Parquet) whose price mix the validation slice should weigh like, "
             "e.g. train items known to share the test split's distribution; never the test "
             "split itself.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing weights file.")] = False,
) -> None:
    """Fit ensemble weights over members' predictions on a validation slice of the train split
    (non-negative least squares on log price); evaluate with --predictor ensemble --path OUT."""
    from rich.console import Console
    from rich.table import Table

    from pricer.data.store import price_bounds
    from pricer.predict.ensemble import fit_ensemble, parse_member

    if not (data or train):
        raise PricerError("give --train FILE or --data (a saved data set)")
    if val_size < 1:
        raise PricerError(f"--val-size must be at least 1, got {val_size}")
    if val_pool < 0:
        raise PricerError(f"--val-pool must be 0 or more, got {val_pool}")
    like = _prices_like(balance_prices, prices_like)
    if out.exists() and not overwrite:
        raise PricerError(f"{out}: exists (give --overwrite to replace it)")
    specs = [parse_member(m) for m in member]
    if any(s["predictor"] == "ensemble" for s in specs):
        raise PricerError("an ensemble cannot be a member of an ensemble")
    train_items = _train_items(data or "", train, max_items)
    if not train_items:
        raise PricerError("the train split is empty")
    console = Console()
    with console.status("ensemble") as status:
        found_ens, found = fit_ensemble(
            specs, train_items, out, val_size=val_size, seed=seed, bounds=price_bounds(train or data),
            balance_prices=balance_prices, prices_like=like, val_pool=val_pool,
            progress=lambda name, stage: status.update(f"{stage} {name}"))
    val = found["validation"]
    t = Table(title=f"ensemble weights ({found['method']}); validation: {val['items']} train "
                    f"items held out, members fitted on {val['fit_items']}", header_style="bold")
    weighted = "weighted_error" in val["ensemble"]  # the slice was weighted: its figures too
    columns = ["member", "weight", "val error $", "val RMSLE"]
    columns += ["weighted error $", "weighted RMSLE"] if weighted else []
    for column in columns:
        t.add_column(column, justify="left" if column == "member" else "right")

    def figures(s):
        shown = [f"{s['error']:,.2f}", f"{s['rmsle']:.3f}"]
        return shown + ([f"{s['weighted_error']:,.2f}", f"{s['weighted_rmsle']:.3f}"] if weighted else [])

    for m, w, s in zip(found_ens.members, found_ens.weights, val["members"]):
        where = "".join(f" {k}={v}" for k, v in m["options"].items())
        t.add_row(f"{s['name']} ({m.get('fitted', m['predictor'])}{where})", f"{w:.4f}", *figures(s))
    t.add_row("intercept", f"{found_ens.intercept:+.4f}", *[""] * (len(columns) - 2))
    t.add_row("[bold]ensemble[/]", "", *figures(val["ensemble"]))
    console.print(t)
    console.print(f"weights: {out}; evaluate with: pricer eval --predictor ensemble --path {out}",
                  highlight=False, soft_wrap=True)
