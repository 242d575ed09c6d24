"""One version: pyproject.toml's, as installed metadata, `raremix.__version__` and the CLI."""

import importlib.metadata
from pathlib import Path

import pytest

import raremix
from cli_runner import cli

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_comes_from_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    # a mismatch means the install is stale: `make install` reinstalls when pyproject changes
    assert importlib.metadata.version("raremix") == declared
    assert raremix.__version__ == declared


@pytest.mark.parametrize("args", [("--version",), ("version",)])
def test_cli_prints_the_version(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    result = cli(capsys, monkeypatch, *args)
    assert result.code == 0
    assert result.out == f"{raremix.__version__}\n"
    assert result.err == ""
