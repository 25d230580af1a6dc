"""The `pricer` command. Each stage of the pipeline has its own module here; heavy libraries
(torch, transformers) are imported inside the commands so that `--help` stays instant."""

import logging
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from pricer.cli import data, demo, evaluate, model, predict, train
from pricer.errors import PricerError

app = typer.Typer(
    help="Turn a pretrained causal language model into a product-price estimator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("data")(data.data)
app.add_typer(model.app, name="model")
app.command("train")(train.train)
app.command("predict")(predict.predict)
app.command("eval")(evaluate.eval_command)
app.command("baselines")(evaluate.baselines)
app.command("leaderboard")(evaluate.leaderboard)

err = Console(stderr=True)


def quiet_libraries() -> None:
    """Hide library noise a user can do nothing about: deprecation notices of transformers/datasets,
    and bitsandbytes' note that it could not fetch an optional CPU kernel from the Hub."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def main() -> None:
    quiet_libraries()
    try:
        app()
    except PricerError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # one line
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
