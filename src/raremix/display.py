"""Terminal output shared by the CLI and the study analyses."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def wide_console(width: int = 160) -> Console:
    """A rich Console on stdout for wide tables: piped output would default to 80 columns,
    which folds them beyond reading (and cuts names), so it gets `width` instead."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else width)
