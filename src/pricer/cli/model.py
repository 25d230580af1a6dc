"""`pricer model ...`: load, inspect, download (issue 4)."""

import typer

app = typer.Typer(help="Load, inspect and download base models and adapters.", no_args_is_help=True)
