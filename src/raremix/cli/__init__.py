"""The `raremix` command line. Each command group lives in its own module of this package.

Every command runs through `main`, which turns a `RaremixError` (bad input) into one
line on stderr and exit code 2 — never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from raremix.display import safe
from raremix.errors import RaremixError

app = typer.Typer(
    name="raremix",
    help="Bigger model or better mix? A lab and a toolkit for teaching models rare tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    """`raremix --version`: the same string as `raremix version` and `raremix.__version__`."""
    if value:
        from raremix import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Bigger model or better mix? A lab and a toolkit for teaching models rare tasks."""


def _register() -> None:
    """Import the command modules; each adds its commands to `app`."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def main() -> None:
    """Entry point: run the app, reporting bad input in one line with exit code 2."""
    _register()
    try:
        rc = app(standalone_mode=False)
    except RaremixError as err:
        typer.secho(f"error: {safe(err, markup=False)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: finished work is kept; rerun to resume", err=True)
        sys.exit(130)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except Exception as err:
        # click's usage errors (typer vendors click, so match by behaviour, not type)
        show = getattr(err, "show", None)
        if callable(show) and hasattr(err, "exit_code"):
            show()
            sys.exit(err.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
