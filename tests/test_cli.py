"""Bad input through the CLI: one line naming the problem and the fix, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiny_configs import tiny_config


def raremix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raremix", *args], capture_output=True, text=True, cwd=cwd
    )


def write(tmp_path: Path, data: object, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("config", "overrides", "needle"),
    [
        (
            tiny_config(tasks={"copy": {}, "successor": {"task": "succesor"}}),
            [],
            "unknown task 'succesor': did you mean 'successor'?",
        ),
        (tiny_config(), ["stpes=10"], "unknown key 'stpes': did you mean 'steps'?"),
        (tiny_config(), ["optim.lrr=0.1"], "unknown key 'optim.lrr': did you mean 'lr'?"),
        (tiny_config(), ["batch_size=-4"], "'batch_size'"),
        (tiny_config(), ["model.d_model=-8"], "'model.d_model'"),
        ("- just\n- a list\n", [], "expected a mapping"),
        ("steps: [unclosed\n", [], "is not valid YAML"),
        (tiny_config(), ["mixture.sources.0.weight=-1"], "override"),
    ],
)
def test_bad_train_input_is_one_line_exit_2(
    tmp_path: Path, config: object, overrides: list[str], needle: str
) -> None:
    proc = raremix(
        "train",
        str(write(tmp_path, config)),
        *overrides,
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    proc = raremix("train", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_negative_source_weight_is_named(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["mixture"] = {
        "sources": [
            {"name": "copy", "size": 10, "weight": -1},
            {"name": "successor", "size": 10, "weight": 1},
        ]
    }
    proc = raremix("train", str(write(tmp_path, cfg)), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert "weight must be a finite number >= 0" in proc.stderr


def test_checkpoint_of_another_shape_via_cli(tmp_path: Path) -> None:
    cfg = write(tmp_path, tiny_config(steps=20, eval_every=20, checkpoint_every=20))
    run = str(tmp_path / "run")
    assert raremix("train", str(cfg), "--out", run).returncode == 0
    proc = raremix("train", str(cfg), "model.d_model=24", "--out", run)
    assert proc.returncode == 2
    assert "different model" in proc.stderr and "--no-resume" in proc.stderr


def test_tasks_table_lists_every_task() -> None:
    from raremix.tasks import TASKS

    proc = raremix("tasks")
    assert proc.returncode == 0
    for name in TASKS:
        assert name in proc.stdout
    compare = next(line for line in proc.stdout.splitlines() if line.startswith("│ compare "))
    cells = [c.strip() for c in compare.split("│")]
    # held-out n, chance (one of three symbols), then the rule's score and name
    assert cells[8:10] == ["256", "0.33"] and "(longer is larger" in cells[11]
