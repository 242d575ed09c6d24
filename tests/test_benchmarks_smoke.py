"""Each benchmark's quick mode runs and prints its result. Speed targets live in the
benchmarks themselves ("met" / "NOT met"), not here: this only checks that they work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiny_configs import tiny_config

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = {p.stem for p in BENCH.glob("*.py") if p.stem[0] != "_"}  # _*.py: imported modules
RESULT = {  # what each benchmark's result line looks like; others: any ratio or speed-up
    "train_throughput": r"ratio raremix/bare, training steps only: \d+\.\d+",
    "sampler": r"speed ratio, rows as python dicts +\| [\d,]+×",
    "study_throughput": r"speed-up, wall-clock runs/min: \d+\.\d+x",
    "stacked_models": r"speed-up per model: vmap \d+\.\d+x, ensemble \d+\.\d+x; "
    r"a run's, with data per member: <= \d+\.\d+x",
}
ANY_RATIO = r"(?i)(ratio|speed-up)\b[^\n]*\d"


def run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=BENCH.parent, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS - {"run_all", "walltime"}))
def test_quick_benchmark_prints_its_ratio(name: str) -> None:
    out = run(str(BENCH / "run_all.py"), "--only", name)  # with run_all's quick arguments
    assert re.search(RESULT.get(name, ANY_RATIO), out), out[-3000:]
    assert re.search(rf"{name} +ok", out), out[-3000:]


@pytest.mark.slow
def test_walltime_times_a_study(tmp_path: Path) -> None:
    # the demo's quick variant takes 20-60 s on 2 cores: a tiny study runs the same path
    base = tiny_config(steps=20, eval_every=10, checkpoint_every=10)
    study = {"name": "tiny", "base": base, "axes": {"seed": [0, 1]}}
    study["quick"] = {"base": {"steps": 10}, "axes": {"seed": [0]}}
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(study))
    out = run(str(BENCH / "walltime.py"), "--quick", "--study", str(spec), "--workers", "1")
    assert re.search(r"1 done, 0 skipped, 0 failed of 1 runs", out), out
    assert re.search(r"tiny --quick: wall time: \d+\.\d s", out), out


def test_run_all_lists_every_benchmark() -> None:
    out = run(str(BENCH / "run_all.py"), "--list")
    listed = {Path(line.split()[0]).stem for line in out.splitlines()}
    assert listed == SCRIPTS - {"run_all"}
    assert "benchmarks/train_throughput.py --quick" in out
