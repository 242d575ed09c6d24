"""`raremix advise` end to end: bad inventories, the quick path, a tiny pilot with
`--from-study` and `--validate`."""

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
    """A tiny inventory: the lab's tasks, two 12k pilots of 150 steps, an easy rule."""
    data: dict[str, object] = {
        "name": "tiny",
        "base": str(LAB),
        "train": {
            "steps": 150,
            "eval_every": 25,
            "eval_examples": 64,
            "optim": {"schedule": "constant", "warmup_steps": 20},
        },
        "tasks": {"copy": 1000, "inc": 500, "successor": 300, "compare": 60},
        "targets": ["compare"],
        "learned": {"threshold": 0.3, "consecutive": 2},
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
        ({"learned": {"threshold": 1.5}}, "threshold"),
        ({"max_flops": 1.0}, "max_flops 1 FLOPs is below one training step"),
        (
            {"pilot": {"flops_cap": 1e3}},
            "pilot.flops_cap at 12k 1e+03 FLOPs is below one training step",
        ),
        ({"train": {"optim": {"schedule": "cosine"}}}, "depends on the run's budget"),
    ],
)
def test_a_bad_inventory_is_one_line_exit_2(
    tmp_path: Path, raremix: Callable[..., tuple[int, str, str]], over: dict, needle: str
) -> None:
    code, _, err = raremix("advise", str(inventory(tmp_path, **over)))
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_the_quick_path_prices_every_option(
    tmp_path: Path, raremix: Callable[..., tuple[int, str, str]]
) -> None:
    pilot = tmp_path / "pilot"
    code, out, err = raremix(
        "advise", "lab", "--quick", "--pilot-dir", str(pilot), "--workers", "2"
    )
    assert code in (0, 1), err + out  # 1: the law found no option meeting the goal (said why)
    advice = json.loads((pilot / "advise" / "recommendation.json").read_text())
    assert {o["size"] for o in advice["options"]} == {"12k"}
    assert {o["factor"] == 1 for o in advice["options"]} == {True, False}  # natural and remixed
    for o in advice["options"]:
        assert o["flops"] is None or o["flops"][0] is None or o["flops"][0] > 0
    assert "FLOPs to learn every target" in out
    assert (code == 0) == (advice["chosen"] is not None)
    assert (pilot / "advise" / "advise.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_tiny_pilot_recommends_and_validates_from_the_study(
    tmp_path: Path, raremix: Callable[..., tuple[int, str, str]]
) -> None:
    inv, pilot = inventory(tmp_path), tmp_path / "pilot"
    code, out, err = raremix("advise", str(inv), "--pilot-dir", str(pilot), "--workers", "2")
    assert code == 0, err + out
    assert "recommendation" in out and "★" in out
    advice = json.loads((pilot / "advise" / "recommendation.json").read_text())
    chosen = advice["chosen"]
    assert chosen["size"] == "12k" and chosen["factor"] >= 1
    fit, lo, hi = chosen["flops"]
    assert lo <= fit and (hi is None or fit <= hi)
    assert chosen["steps"] >= 1
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
    assert check["predicted_budget"] == chosen["flops"]
    assert check["outcome"] in ("supported", "contradicted", "inconclusive")
    k, n = check["by_budget"][:2]
    assert n == 1 and 0 <= k <= n
