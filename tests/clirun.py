"""One way to drive the `pricer` command in tests: in-process, with what a user would see."""

from click.exceptions import Exit
from typer.testing import CliRunner

from pricer.cli import app


def pricer(*args, input: str | None = None, env: dict | None = None):
    """Run `pricer ARGS...`; the result has exit_code, stdout, stderr (separate streams)."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=env,
                              catch_exceptions=True)


def assert_bad_input(result, *fragments: str) -> str:
    """Bad input: exit code 2, one line on stderr that starts with "error:" and names each
    fragment, no traceback anywhere. Returns the line."""
    assert result.exception is None or isinstance(result.exception, (SystemExit, Exit)), (
        f"raised {result.exception!r}")
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


def assert_ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr,
                                   result.exception)
    return result
