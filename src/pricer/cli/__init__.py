"""The `pricer` command. Each stage of the pipeline has its own module here; heavy libraries
(torch, transformers) are imported inside the commands so that `--help` stays instant.

Commands parse options, call the stage's library code and print; they hold no orchestration.
A `PricerError` anywhere ends the command with one red line on stderr and exit code 2 (this is
done by `PricerGroup`, so tests that invoke `app` in-process see exactly what a user sees).
"""

import logging
import warnings

import typer
import typer.core
from typer import _click as click  # Typer 0.29 vendors click: its exceptions are these
from rich.console import Console
from rich.markup import escape

from pricer import __version__
from pricer.cli import data, demo, evaluate, model, predict, train
from pricer.cli import deals, export, runs, serve
from pricer.errors import PricerError

err = Console(stderr=True)


def quiet_libraries() -> None:
    """Hide library noise a user can do nothing about: deprecation notices of transformers/datasets,
    and bitsandbytes' note that it could not fetch an optional CPU kernel from the Hub."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


# flags that were renamed for one name per idea (docs/cli.md): the error names the new one
RENAMED = {("serve", "--max-items"): "--max-request-items",
           ("memory", "--config"): "--model-config", ("inspect", "--config"): "--model-config"}


def one_line(message: str) -> None:
    """The project's one red line on stderr."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


class PricerGroup(typer.core.TyperGroup):
    """The command group: user errors, and usage errors (Typer would draw a box), become one
    red line and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `pricer` alone: the help, as Typer shows it
            from typer import rich_utils

            rich_utils.rich_format_error(e)
            raise SystemExit(e.exit_code) from None
        except click.exceptions.UsageError as e:
            hint = ""
            command = e.ctx.command.name if e.ctx else None
            if isinstance(e, click.exceptions.NoSuchOption) and (command, e.option_name) in RENAMED:
                hint = f" (it is now {RENAMED[command, e.option_name]})"
            where = f"pricer {e.ctx.command_path.partition(' ')[2]}".strip() if e.ctx else "pricer"
            one_line(f"{e.format_message().rstrip('.')}{hint}; see `{where} --help`")
            raise SystemExit(2) from None
        except click.ClickException as e:
            one_line(e.format_message())
            raise SystemExit(e.exit_code) from None
        except typer.Abort:
            err.print("[yellow]aborted[/]")
            raise SystemExit(1) from None
        if isinstance(code, int) and code:  # click.exceptions.Exit(code), e.g. typer.Exit(1)
            raise SystemExit(code)
        return code

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PricerError as e:  # one line, whatever the terminal width
            one_line(str(e))
            raise SystemExit(2) from None


def _version(value: bool) -> None:
    if value:
        print(f"pricer {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=PricerGroup,
    help="Turn a pretrained causal language model into a product-price estimator. New here? "
         "`pricer demo` runs the whole loop offline in minutes; docs/cli.md lists every flag.",
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
app.command("runs")(runs.runs)
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
