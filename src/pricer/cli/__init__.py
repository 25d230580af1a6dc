"""The `pricer` command. Each stage of the pipeline has its own module here; heavy libraries
(torch, transformers) are imported inside the commands so that `--help` stays instant.

Commands parse options, call the stage's library code and print; they hold no orchestration.
A `PricerError` anywhere ends the command with one red line on stderr and exit code 2 (this is
done by `PricerGroup`, so tests that invoke `app` in-process see exactly what a user sees).
"""

import logging
import warnings

import click
import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from pricer import __version__
from pricer.cli import data, demo, evaluate, model, predict, train
from pricer.cli import deals, export, serve
from pricer.errors import PricerError

err = Console(stderr=True)


def quiet_libraries() -> None:
    """Hide library noise a user can do nothing about: deprecation notices of transformers/datasets,
    and bitsandbytes' note that it could not fetch an optional CPU kernel from the Hub."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


class PricerGroup(typer.core.TyperGroup):
    """The command group: user errors become one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PricerError as e:
            # one line, whatever the terminal width; markup in the message is shown as text
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise SystemExit(2) from None


def _version(value: bool) -> None:
    if value:
        print(f"pricer {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=PricerGroup,
    help="Turn a pretrained causal language model into a product-price estimator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    quiet_libraries()


app.command("demo")(demo.demo)
app.command("data")(data.data)
app.add_typer(model.app, name="model")
app.command("train")(train.train)
app.command("predict")(predict.predict)
app.command("eval")(evaluate.eval_command)
app.command("baselines")(evaluate.baselines)
app.command("leaderboard")(evaluate.leaderboard)
app.command("ensemble")(evaluate.ensemble)
app.add_typer(evaluate.chart_app, name="chart")
app.command("export")(export.export)
app.command("serve")(serve.serve)
app.command("deals")(deals.deals)


def main() -> None:
    quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None
