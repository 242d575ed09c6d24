"""raremix: bigger model or better mix? A lab and a toolkit for teaching models rare tasks."""

from raremix.errors import RaremixError

__version__ = "0.1.0"
__all__ = ["RaremixError", "__version__"]
