"""The README's bring-your-own-data walk-through, end to end on its quick variant:
generate the data, make a tiny HF model, run the study through `hf-train`, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": str(BIN)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.slow
def test_walkthrough_from_data_file_to_report(tmp_path: Path) -> None:
    py = str(BIN / "python")
    _run(
        py,
        str(ROOT / "examples/make_fcall_data.py"),
        "--out",
        "fcall.jsonl",
        "--rows",
        "1500",
        "--invalid",
        "3",
        cwd=tmp_path,
    )
    _run(
        py,
        str(ROOT / "examples/make_tiny_model.py"),
        "--data",
        "fcall.jsonl",
        "--out",
        "tiny-gpt2",
        "--width",
        "32",
        cwd=tmp_path,
    )
    raremix = str(BIN / "raremix")
    out = _run(
        raremix, "study", "run", str(ROOT / "examples/fcall_study.yaml"), "--quick", cwd=tmp_path
    ).stdout
    assert "2 done, 0 skipped, 0 failed of 2 runs" in out
    _run(raremix, "report", "studies/fcall-quick", cwd=tmp_path)
    verdict = json.loads((tmp_path / "studies/fcall-quick/analysis/verdict.json").read_text())
    groups = [row[0] for row in verdict["table"]["rows"]]
    assert groups == ["tiny-gpt2 · natural", "tiny-gpt2 · floor-3%"]
    assert (tmp_path / "studies/fcall-quick/report.html").stat().st_size > 10_000
    # every one of the 8 skills was evaluated in each run (rows in the study's store)
    runs = list((tmp_path / "studies/fcall-quick/runs").iterdir())
    for run in runs:
        tasks = {json.loads(line)["task"] for line in (run / "metrics.jsonl").open()}
        assert {"nested_calls", "single_call", "irrelevance"} <= tasks
        assert (run / "lm_eval").is_dir()
