"""`raremix advise` end to end: bad inventories, a tiny pilot, and `--from-study`."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
import yaml

from cli_runner import cli

LAB = Path(str(resources.files("raremix"))) / "configs" / "lab.yaml"


@pytest.fixture
def raremix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """`raremix ARGS` in-process through its real entry point: (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "160")

    def run(*args: str) -> tuple[int, str, str]:
        return cli(capsys, monkeypatch, *args)

    return run


def inventory(tmp_path: Path, **over: object) -> Path:
    """A tiny inventory: the lab's tasks, two 12k pilots of 100 steps, an easy goal."""
    data: dict[str, object] = {
        "name": "tiny",
        "base": str(LAB),
        "train": {"steps": 150, "eval_every": 50, "eval_examples": 64},
        "tasks": {"copy": 1000, "inc": 500, "successor": 300, "compare": 60},
        "targets": ["compare"],
        "target_acc": 0.05,
        "common_tolerance": 1.0,
        "pilot": {"sizes": ["12k"], "factors": [1, 10], "seeds": [0]},
        "validate_seeds": [1],
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data | over))
    return path


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"targts": ["compare"]}, "unknown key 'targts': did you mean 'targets'?"),
        ({"targets": ["compar"]}, "target 'compar' is not in tasks: did you mean 'compare'?"),
        ({"tasks": {"copy": 10, "comprae": 5}}, "unknown task 'comprae': did you mean 'compare'?"),
        ({"pilot": {"sizes": ["13k"]}}, "unknown model size '13k'"),
        ({"target_acc": 1.5}, "'target_acc'"),
    ],
)
def test_a_bad_inventory_is_one_line_exit_2(
    tmp_path: Path, raremix: Callable[..., tuple[int, str, str]], over: dict, needle: str
) -> None:
    code, _, err = raremix("advise", str(inventory(tmp_path, **over)))
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_tiny_pilot_recommends_and_from_study_reproduces_it(
    tmp_path: Path, raremix: Callable[..., tuple[int, str, str]]
) -> None:
    inv, pilot = inventory(tmp_path), tmp_path / "pilot"
    code, out, err = raremix("advise", str(inv), "--pilot-dir", str(pilot), "--workers", "2")
    assert code == 0, err + out
    assert "recommendation" in out and "★" in out
    advice = json.loads((pilot / "advise" / "recommendation.json").read_text())
    chosen = advice["chosen"]
    assert chosen["size"] == "12k" and chosen["factor"] >= 1
    for key in ("rare", "common"):
        mean, lo, hi = chosen[key]
        assert 0 <= lo <= mean <= hi <= 1
    assert chosen["rare"][1] >= 0.05  # the goal it was chosen for
    assert (pilot / "advise" / "advise.png").stat().st_size > 10_000
    runs = sorted(p.name for p in (pilot / "runs").iterdir())
    assert len(runs) == 2

    code, out, err = raremix("advise", str(inv), "--from-study", str(pilot), "--validate")
    assert code == 0, err
    assert "no training" in out and "predicted" in out and "measured" in out
    assert sorted(p.name for p in (pilot / "runs").iterdir()) == runs  # no pilot retrained
    redo = json.loads((pilot / "advise" / "recommendation.json").read_text())
    assert redo["chosen"] == chosen
    check = json.loads((pilot / "advise" / "validation.json").read_text())
    assert (check["size"], check["factor"], check["seeds"]) == ("12k", chosen["factor"], [1])
    assert check["rare_predicted"] == chosen["rare"]
    assert all(0 <= v <= 1 for v in check["rare_measured"] + check["common_measured"])
