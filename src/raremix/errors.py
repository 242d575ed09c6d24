"""The one error type raremix raises for bad input, and helpers to phrase it.

Registries (tasks, strategies, curricula, schedules, adaptive rules, probes, loggers,
studies) are module-level `dict[str, entry]`s, one line per entry; a name is looked up
with `lookup(REGISTRY, kind, name)`, or checked in a config validator with
`unknown(kind, name, REGISTRY)`, so an unknown name is always the same one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import TypeVar

T = TypeVar("T")


class RaremixError(Exception):
    """A problem with the user's input: the message names the problem and the fix.

    The CLI prints it as one line and exits with code 2; library callers catch it.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short hint naming the closest valid choice, or listing the valid ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    shown = ", ".join(choices[:12]) + (", …" if len(choices) > 12 else "")
    return f"choose one of: {shown}"


def unknown(kind: str, name: str, choices: Iterable[str]) -> RaremixError:
    """`unknown('task', 'revrse', TASKS)` → "unknown task 'revrse': did you mean 'reverse'?"."""
    return RaremixError(f"unknown {kind} '{name}': {did_you_mean(name, choices)}")


def lookup(registry: Mapping[str, T], kind: str, name: str) -> T:
    """`registry[name]`, or the one-line `unknown(kind, name, registry)` error."""
    if not isinstance(name, str) or name not in registry:
        raise unknown(kind, str(name), registry)
    return registry[name]


def whole_number(value: object, name: str, minimum: int = 0) -> int:
    """`value` as an int if it is a whole number (NumPy's too; a bool is not) of at least
    `minimum`; else a one-line error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise RaremixError(f"{name} must be a whole number >= {minimum}, got {value!r}: pass one")
    return int(value)
