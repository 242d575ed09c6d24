"""Terminal output shared by the CLI and the study analyses."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def wide_console(width: int = 160) -> Console:
    """A rich Console on stdout for wide tables: piped output would default to 80 columns,
    which folds them beyond reading (and cuts names), so it gets `width` instead."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else width)


# C0/C1 control characters (ESC starts terminal escape sequences; a newline would break
# a one-line error) and the bidi overrides that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: object, markup: bool = True) -> str:
    """`text` (a task name, a path, an error) fit to print: control characters shown as
    escapes (`\\x1b`), and rich markup such as `[/bold]` escaped unless `markup=False`
    (for output that rich does not parse)."""
    from rich.markup import escape

    shown = _UNSAFE.sub(lambda m: repr(m.group())[1:-1], str(text))
    return escape(shown) if markup else shown
