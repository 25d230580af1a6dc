"""`pricer predict`: price one description (argument or stdin) or a file of items (issue 6)."""

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from pricer.cli.predictor import chosen_predictor, fit_note, options_of, with_predictor_flags
from pricer.errors import PricerError, writing

out = Console()
err = Console(stderr=True)


@with_predictor_flags
def predict(
    description: Annotated[Optional[str], typer.Argument(
        help="The item description (read from stdin when left out and no --input).")] = None,
    input: Annotated[Optional[Path], typer.Option(
        "--input", "-i", help="Many items: .jsonl / .csv / .parquet with a text column, or a saved data set.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--out", "-o", "--output", help="JSON Lines of predictions (with --input).")] = None,
    split: Annotated[str, typer.Option(help="Split of a saved data set.")] = "test",
    text_column: Annotated[str, typer.Option(help="Column holding the description.")] = "text",
    precision: Annotated[Optional[str], typer.Option(help="LLM: auto (greedy on a CPU with fast bf16: checked; else bf16 where fast, fp16 on a GPU without bf16), fp32, bf16, fp16, 8bit, 4bit, checked (bf16, close decisions again in fp32: fp32's answers).")] = None,
    device: Annotated[Optional[str], typer.Option(help="LLM: cpu, cuda, cuda:1... (default: cuda if present).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="LLM: items per forward pass (16).")] = None,
    merge: Annotated[Optional[bool], typer.Option("--merge", help="LLM: merge the adapter into the weights first.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(
        help="greedy: tokens to generate (default 4 for Llama 3 tokenizers, 8 for digit ones).")] = None,
    branches: Annotated[Optional[int], typer.Option(help="expected: open number prefixes kept per item (8).")] = None,
    decimals: Annotated[Optional[int], typer.Option(help="expected: decimals to expand (0: whole dollars).")] = None,
    **chosen,
) -> None:
    """Price one description, or a file of items, with any predictor: a run (--run), or one by
    name (--predictor, greedy by default) with its options (--opt key=value)."""
    from pricer.data.items import Item

    if input is None and output is not None:
        raise PricerError("--out needs --input")
    if input is not None and description is not None:
        raise PricerError("give either a DESCRIPTION or --input, not both")
    if input is not None and output is None:
        raise PricerError("--input needs --out (a .jsonl file for the predictions)")
    if input is None and description is None:
        if sys.stdin.isatty():
            raise PricerError("give a DESCRIPTION, pipe one on stdin, or use --input FILE --out FILE")
        description = sys.stdin.read().strip()
    if batch_size is not None and batch_size < 1:
        raise PricerError("--batch-size must be at least 1")
    if output is not None:
        _check_output(output)  # before any model work: a bad path must not cost the predictions
    more = {"precision": precision, "device": device, "batch_size": batch_size, "merge": merge,
            "max_new_tokens": max_new_tokens, "branches": branches, "max_decimals": decimals}
    options_of(chosen["opt"], more)  # a bad --opt fails before the file is read

    rows, bad = [], []
    if input is not None:
        from pricer.data.read import read_texts

        rows, bad = read_texts(input, split=split, text_column=text_column)

    with err.status(f"loading {chosen['predictor'] or chosen['run'] or 'greedy'}") as status:
        priced_by, fit = chosen_predictor(chosen, more, status=status.update)
    if note := fit_note(fit):
        err.print(f"[yellow]{note}[/]", highlight=False, soft_wrap=True)

    if input is None:
        result = priced_by.predict_details([Item("1", description)])[0]
        _print_one(result, description)
        return
    _predict_file(priced_by, [Item(r.id, r.text) for r in rows], bad, output)


def _check_output(output: Path) -> None:
    """Refuse an --output that is a folder or lies under a file, before anything is computed."""
    if output.is_dir():
        raise PricerError(f"{output}: is a folder, expected a .jsonl file to write")
    existing = next((p for p in output.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise PricerError(f"{output}: {existing} is a file, not a folder")


def _print_one(result: dict, description: str) -> None:
    if result["price"] is None:
        out.print(f"[yellow]no price:[/] {result['reason']}", highlight=False)
        return
    out.print(f"[bold green]${result['price']:,.2f}[/]", highlight=False)
    if "p10" in result:
        out.print(f"[dim]10-90 %: ${result['p10']:,.2f} - ${result['p90']:,.2f}, median "
                  f"${result['p50']:,.2f}"
                  + (f", number mass covered {result['mass']:.2f}" if "mass" in result else "")
                  + "[/]", highlight=False)
    if not description.strip():
        err.print("[yellow]warning:[/] the description is empty")
    if result.get("truncated"):
        err.print("[yellow]warning:[/] the description was cut to the model's context limit")


def _predict_file(predictor, rows, bad, output: Path) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    start = time.perf_counter()
    with Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task("predict", total=len(rows))
        results = []
        for start in range(0, len(rows), predictor.batch_size):  # as the harness calls it
            batch = rows[start:start + predictor.batch_size]
            results += predictor.predict_details(batch)
            bar.advance(task, len(batch))
    seconds = time.perf_counter() - start
    with writing(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            for row, result in zip(rows, results):
                record = {"id": row.id, "price": result["price"]}
                for key in ("p10", "p50", "p90", "mass", "reason"):
                    if key in result:
                        record[key] = result[key]
                if result.get("truncated"):
                    record["truncated"] = True
                if not row.text.strip():
                    record["empty"] = True
                f.write(json.dumps(record) + "\n")

    table = Table(title=f"pricer predict ({predictor.name})", title_style="bold")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    priced = sum(r["price"] is not None for r in results)
    table.add_row("[green]priced[/]", str(priced))
    table.add_row("[yellow]no price[/]", str(len(results) - priced))
    table.add_row("[red]bad rows skipped[/]", str(len(bad)))
    table.add_row("empty descriptions", str(sum(not r.text.strip() for r in rows)))
    table.add_row("cut to the model limit", str(sum(bool(r.get("truncated")) for r in results)))
    table.add_row("items/s", f"{len(rows) / seconds:.2f}")
    table.add_row("written to", str(output))
    out.print(table)
    for line, why in bad[:20]:
        err.print(f"[red]skipped[/] line {line}: {why}", highlight=False)
    if len(bad) > 20:
        err.print(f"[red]... and {len(bad) - 20} more bad rows[/]")
