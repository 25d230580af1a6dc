"""`pricer runs`: the runs under a folder, one line each, as `ollama list` lists models."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def runs(
    folder: Annotated[Path, typer.Argument(help="Where to look (at any depth).")] = Path("runs"),
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run on stdout.")] = False,
) -> None:
    """List the runs under FOLDER: name, what it holds, base model, data, steps, best score."""
    import json

    from pricer.models.run import find_runs

    found = [run.summary() for run in find_runs(folder)]
    if json_out:
        for row in found:
            typer.echo(json.dumps(row))
        return
    console = Console()
    if not found:
        console.print(f"no runs under {folder} (pricer train --out FOLDER makes one)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "holds", "base model", "data", "steps", "error", "RMSLE", "n"):
        table.add_column(column, overflow="fold")
    for row in found:
        name = Path(row["path"]).relative_to(folder) if Path(row["path"]) != folder else folder
        table.add_row(str(name), row["holds"] or "-", str(row["base_model"] or "-"),
                      Path(str(row["data"] or "-")).name, _text(row["steps"]),
                      "-" if row["error"] is None else f"${row['error']:,.2f}",
                      "-" if row["rmsle"] is None else f"{row['rmsle']:.3f}", _text(row["n"]))
    console.print(table)


def _text(value) -> str:
    return "-" if value is None else str(value)
