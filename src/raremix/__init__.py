"""raremix: bigger model or better mix? A lab and a toolkit for teaching models rare tasks."""

from importlib.metadata import PackageNotFoundError, version

from raremix.errors import RaremixError

try:
    # pyproject.toml's `version` is the one source; the installed metadata carries it
    __version__ = version("raremix")
except PackageNotFoundError:  # a source tree on sys.path without `pip install -e .`
    __version__ = "0+unknown"
__all__ = ["RaremixError", "__version__"]
