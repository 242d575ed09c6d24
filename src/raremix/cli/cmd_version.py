"""`raremix version` (also `raremix --version`): the installed version, from pyproject.toml."""

import typer

from raremix import __version__
from raremix.cli import app


@app.command()
def version() -> None:
    """Print the raremix version."""
    typer.echo(__version__)
