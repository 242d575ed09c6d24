"""The study runner under concurrency: complete rows before `done`, workers die with the
parent, only registered run functions unless trusted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.results.rows import METRICS_FILE
from raremix.results.store import ResultStore
from raremix.studies.completeness import missing_rows
from raremix.studies.runner import demo_run, run_study
from raremix.studies.spec import StudySpec

DEMO = "raremix.studies.runner:demo_run"
CUT = "test_runner_concurrency:cut_run"  # this module: spawned workers inherit sys.path


def cut_run(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """demo_run, then its last evaluation's rows lost (as when another writer truncates them)."""
    facts = demo_run(config, run_dir)
    lines = (run_dir / METRICS_FILE).read_text().splitlines(keepends=True)
    (run_dir / METRICS_FILE).write_text("".join(lines[:-3]))
    return facts


def spec(run_fn: str = DEMO, seeds: tuple[int, ...] = (0, 1)) -> StudySpec:
    base = {"seed": 0, "steps": 40, "eval_every": 10, "checkpoint_every": 20}
    return StudySpec(name="concur", base=base, axes={"seed": list(seeds)}, run_fn=run_fn)


def rows(steps: list[int], tasks: tuple[str, ...] = ("a", "b")) -> list[dict[str, Any]]:
    return [
        {"step": s, "task": t, "metric": m, "value": 1.0}
        for s in steps
        for t in tasks
        for m in ("acc", "loss")
    ]


def test_missing_rows_names_what_is_missing() -> None:
    config = {"steps": 40, "eval_every": 10}
    assert missing_rows(config, {"steps": 40}, rows([0, 10, 20, 30, 40])) is None
    assert missing_rows(config, {"steps": 25}, rows([0, 10, 20, 25])) is None  # stopped early
    assert missing_rows(config, {}, rows([0, 10, 20, 30])) == (
        "its metric rows end at step 30 but it reached step 40"
    )
    assert missing_rows(config, {}, rows([0, 10, 40])) == (
        "2 of 5 evaluation steps have no rows (first: step 20)"
    )
    torn = rows([0, 10, 20, 30]) + rows([40], ("a",))
    assert missing_rows(config, {}, torn) == (
        "step 40 lacks the held-out accuracy of tasks that step 0 scored"
    )
    weights_at_0 = [*rows([0, 10, 20, 30, 40]), {"step": 0, "task": "a", "metric": "weight"}]
    assert missing_rows(config, {}, weights_at_0) is None  # other cadences are not required
    assert missing_rows(config, {}, []) == "it wrote no metric rows but reached step 40"
    assert missing_rows({"depth": 3}, {"acc": 0.5}, []) is None  # states no steps: not checked


def test_unregistered_run_fn_needs_trust_and_incomplete_rows_are_not_done(tmp_path: Path) -> None:
    with pytest.raises(RaremixError, match=r"not a registered run function.*--trust-run-fn"):
        run_study(spec(CUT), tmp_path, progress=False)
    assert not (tmp_path / "store").exists()
    cut = run_study(spec(CUT), tmp_path, workers=2, progress=False, trust_run_fn=True)
    assert not cut.done and len(cut.failed) == 2
    for run_id, error in cut.failed.items():
        moved = tmp_path / "runs" / f"{run_id}.incomplete"
        assert error == (
            "its metric rows are incomplete: its metric rows end at step 30 but it reached "
            f"step 40 (moved to {moved} so that a rerun starts afresh)"
        )
        assert (moved / "demo_ckpt.npz").is_file() and not (tmp_path / "runs" / run_id).exists()
    assert set(ResultStore.open(tmp_path).runs()["status"]) == {"failed"}
    fixed = run_study(spec(), tmp_path, workers=2, progress=False)  # rerun, not skipped
    assert sorted(fixed.done) == sorted(cut.failed) and not fixed.skipped


def test_stored_runs_with_incomplete_rows_are_run_again(tmp_path: Path) -> None:
    first = run_study(spec(), tmp_path, workers=2, progress=False)
    damaged, intact = sorted(first.done)
    path = tmp_path / "store" / "metrics" / f"{damaged}.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 3), path)  # a store written before checks
    again = run_study(spec(), tmp_path, workers=2, progress=False)
    assert again.incomplete == [damaged] and again.done == [damaged] and again.skipped == [intact]
    assert (tmp_path / "runs" / f"{damaged}.incomplete").is_dir()  # set aside, rerun afresh
    assert (tmp_path / "runs" / damaged / "log.txt").read_text() == "start step=0\n"
    assert "1 stored with incomplete rows were run again" in again.summary()
    metrics = ResultStore.open(tmp_path).metrics()
    assert (metrics.groupby("run_id")["step"].max() == 40).all() and len(metrics) == 2 * 5 * 3


def test_study_cli_names_the_trust_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "study.yaml"
    study.write_text("name: sneaky\nrun_fn: os:system\nbase: {seed: 0}\naxes: {seed: [0]}\n")
    got = cli(capsys, monkeypatch, "study", "run", str(study), "--out", str(tmp_path / "out"))
    assert got.code == 2 and got.err.count("\n") == 1
    assert "run_fn 'os:system' is not a registered run function" in got.err
    assert "--trust-run-fn" in got.err and not (tmp_path / "out" / "runs").exists()


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(
        f"name: orphans\nrun_fn: {DEMO}\n"
        "base: {seed: 0, steps: 1000000, eval_every: 100000, checkpoint_every: 100000}\n"
        "axes: {seed: [0, 1]}\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from raremix.cli import main; main()", "study", "run"]
    proc = subprocess.Popen(
        [*cmd, str(study), "--out", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(out.glob("runs/*/log.txt"))) < 2:
            time.sleep(0.1)  # both workers are training
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the parent alone: nothing signals the workers
        proc.wait()
        assert len(list(out.glob("runs/*/log.txt"))) == 2 and len(workers) >= 2
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)]
    finally:  # whatever failed, leave no process of this test behind
        for pid in [proc.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
