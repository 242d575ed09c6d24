"""Run `raremix ARGS` in-process through its real entry point, for CLI tests."""

from __future__ import annotations

import sys
from typing import NamedTuple

import pytest

from raremix.cli import main


class Result(NamedTuple):
    """Exit code and captured output of one command."""

    code: int
    out: str
    err: str


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`raremix ARGS` as a user would type it: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["raremix", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
