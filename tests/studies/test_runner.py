"""The study runner end to end, on a real (tiny, NumPy) run function: parallel, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.results.rows import read_rows
from raremix.results.store import ResultStore
from raremix.studies.runner import ANALYZERS, DEFAULT_ANALYZER, demo_run, run_study
from raremix.studies.spec import StudySpec, expand, load_spec

DEMO = "raremix.studies.runner:demo_run"


def demo_spec(name: str = "demo", seeds: tuple[int, ...] = (0, 1), **axes: object) -> StudySpec:
    base = {"seed": 0, "steps": 200, "rare_rate": 0.05, "fail_at_step": None, "dim": 16}
    all_axes = {"rare_rate": {"natural": 0.05, "up": 0.3}, "seed": list(seeds), **axes}
    return StudySpec(name=name, base=base, axes=all_axes, run_fn=DEMO)


def starts(study: Path, run_id: str) -> list[str]:
    """The run function's start log: one line per invocation."""
    return (study / "runs" / run_id / "log.txt").read_text().splitlines()


def test_demo_run_resumes_bit_exactly(tmp_path: Path) -> None:
    config = {"seed": 3, "steps": 300, "checkpoint_every": 100}
    whole = demo_run(config, tmp_path / "whole")
    with pytest.raises(RaremixError, match="failed at step 150"):
        demo_run({**config, "fail_at_step": 150}, tmp_path / "killed")
    resumed = demo_run(config, tmp_path / "killed")
    assert (tmp_path / "killed" / "log.txt").read_text().splitlines() == [
        "start step=0",
        "start step=100",
    ]
    assert resumed == whole
    pd.testing.assert_frame_equal(
        read_rows(tmp_path / "killed" / "metrics.jsonl").drop(columns="run"),
        read_rows(tmp_path / "whole" / "metrics.jsonl").drop(columns="run"),
    )


def test_study_runs_in_parallel_into_the_store(tmp_path: Path) -> None:
    outcome = run_study(demo_spec(), tmp_path, workers=2, progress=False)
    runs = expand(demo_spec())
    assert (
        outcome.ok
        and sorted(outcome.done) == sorted(r.run_id for r in runs)
        and not outcome.skipped
    )
    store = ResultStore.open(tmp_path)
    table = store.runs().set_index("run_id")
    assert (table["status"] == "done").all() and (table["params"] == 72).all()
    assert set(table["rare_rate"]) == {"natural", "up"} and set(table["seed"]) == {"0", "1"}
    for run in runs:  # the store holds exactly what each run wrote
        written = read_rows(tmp_path / "runs" / run.run_id / "metrics.jsonl")
        stored = store.sql(
            f"select * from metrics where run_id = '{run.run_id}' order by step, task"
        )
        assert stored["value"].tolist() == written.sort_values(["step", "task"])["value"].tolist()
        assert starts(tmp_path, run.run_id) == ["start step=0"]
    final = store.sql(
        "select rare_rate, avg(value) as loss from metrics join runs using (run_id) "
        "where task = 'rare' and step = 200 group by rare_rate"
    ).set_index("rare_rate")["loss"]
    assert final["up"] < final["natural"]  # the up-weighted mix learns the rare task better
    assert load_spec(tmp_path / "study.yaml").run_fn == DEMO


def test_restart_skips_finished_runs(tmp_path: Path) -> None:
    first = run_study(demo_spec(seeds=(0,)), tmp_path, workers=2, progress=False)
    full = run_study(demo_spec(seeds=(0, 1)), tmp_path, workers=2, progress=False)
    assert sorted(full.skipped) == sorted(first.done) and len(full.done) == 2
    for run_id in first.done:
        assert starts(tmp_path, run_id) == ["start step=0"]  # never invoked again
    again = run_study(demo_spec(seeds=(0, 1)), tmp_path, progress=False)
    assert again.done == [] and len(again.skipped) == 4


KILL_STUDY = f"""
name: killme
run_fn: {DEMO}
base: {{seed: 0, steps: 3000, checkpoint_every: 250, eval_every: 250}}
axes:
  seed: [0, 1, 2, 3, 4, 5]
"""


@pytest.mark.slow
def test_killed_study_loses_nothing_finished(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(KILL_STUDY)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "from raremix.cli import main; main()",
        "study",
        "run",
        str(tmp_path / "study.yaml"),
    ]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out), "--workers", "2"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def midway() -> bool:  # >= 2 runs stored and another one past its first checkpoint
        stored = {p.stem for p in (out / "store" / "runs").glob("*.parquet")}
        ckpts = {p.parent.name for p in (out / "runs").glob("*/demo_ckpt.npz")}
        return len(stored) >= 2 and bool(ckpts - stored)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not midway():
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers, mid-study
    proc.wait()
    before = ResultStore.open(out).finished_ids()
    assert 2 <= len(before) < 6

    outcome = run_study(load_spec(tmp_path / "study.yaml"), out, workers=2, progress=False)
    assert set(outcome.skipped) == before and len(outcome.done) == 6 - len(before)
    for run_id in before:
        assert starts(out, run_id) == ["start step=0"]
    metrics = ResultStore.open(out).metrics()
    assert not metrics.duplicated(["run_id", "step", "task", "metric"]).any()
    assert (metrics.groupby("run_id")["step"].max() == 3000).all() and metrics[
        "run_id"
    ].nunique() == 6
    resumed = [r for r in outcome.done if starts(out, r)[-1] != "start step=0"]
    assert resumed  # the run killed past its checkpoint went on from there
    for run_id in resumed[:1]:  # a run resumed from its checkpoint equals an uninterrupted one
        config = next(
            r.config for r in expand(load_spec(tmp_path / "study.yaml")) if r.run_id == run_id
        )
        demo_run(config, tmp_path / "fresh")
        fresh = read_rows(tmp_path / "fresh" / "metrics.jsonl")
        assert (
            fresh["value"].tolist()
            == read_rows(out / "runs" / run_id / "metrics.jsonl")["value"].tolist()
        )


def test_failing_runs_are_reported_and_do_not_stop_the_others(tmp_path: Path) -> None:
    case = {"ok": {}, "raises": {"fail_at_step": 50}, "crashes": {"dim": "x"}}
    spec = demo_spec(seeds=(0,), case=case)
    outcome = run_study(spec, tmp_path, workers=2, progress=False)
    labels = {r.run_id: r.labels["case"] for r in expand(spec)}
    assert {labels[r] for r in outcome.done} == {"ok"} and len(outcome.done) == 2
    errors = {labels[r]: e for r, e in outcome.failed.items()}
    assert errors["raises"] == "demo run failed at step 50 as configured (fail_at_step)"
    assert (
        errors["crashes"].startswith("ValueError: invalid literal")
        and "error.txt" in errors["crashes"]
    )
    assert all("\n" not in e for e in errors.values())
    table = ResultStore.open(tmp_path).runs()
    assert sorted(table["status"]) == ["done", "done", "failed", "failed", "failed", "failed"]
    again = run_study(spec, tmp_path, workers=2, progress=False)  # failed runs are retried
    assert sorted(again.failed) == sorted(outcome.failed) and len(again.skipped) == 2
    assert all(len(starts(tmp_path, r)) == 2 for r in outcome.failed if labels[r] == "raises")


def test_bad_setup_fails_in_one_line_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = demo_spec()
    trusted = {"trust_run_fn": True}
    for kwargs, message in [
        (
            {"run_fn": "raremix.studies.runner:demo_rn"},
            "did you mean 'raremix.studies.runner:demo_run'",
        ),
        ({"run_fn": "raremix.studies.runner:demo_rn", **trusted}, "did you mean 'demo_run'"),
        ({"run_fn": "no_such_module:f", **trusted}, "cannot import"),
        ({"run_fn": "demo_run"}, "not 'module:function'"),
        ({"backend": "spark"}, "unknown backend 'spark'"),
    ]:
        with pytest.raises(RaremixError, match=message):
            run_study(spec, tmp_path, progress=False, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RaremixError, match=r"pip install 'raremix\[ray\]'"):
        run_study(spec, tmp_path / "r", backend="ray", progress=False)
    run_study(demo_spec(seeds=(0,)), tmp_path / "s", progress=False)
    with pytest.raises(RaremixError, match="holds study 'demo'"):
        run_study(demo_spec(name="other"), tmp_path / "s", progress=False)
    assert not (tmp_path / "runs").exists()


def test_analyzer_runs_after_a_complete_study(tmp_path: Path) -> None:
    seen: list[Path] = []
    default = ANALYZERS[DEFAULT_ANALYZER]
    ANALYZERS[DEFAULT_ANALYZER] = seen.append
    try:
        assert run_study(demo_spec("analyzed", seeds=(0,)), tmp_path, progress=False).analyzed
        assert seen == [tmp_path]
        failing = demo_spec("analyzed", seeds=(0,), fail_at_step=[10])
        assert not run_study(failing, tmp_path, progress=False).analyzed and len(seen) == 1
    finally:
        ANALYZERS[DEFAULT_ANALYZER] = default


@pytest.mark.slow
def test_ray_backend_gives_the_same_results(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_study(demo_spec(), tmp_path / "ray", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert on_ray.ok and len(on_ray.done) == 4
    run_study(demo_spec(), tmp_path / "local", workers=2, progress=False)
    ray_rows, local_rows = (
        ResultStore.open(tmp_path / "ray").metrics(),
        ResultStore.open(tmp_path / "local").metrics(),
    )
    pd.testing.assert_frame_equal(ray_rows, local_rows)


CLI_STUDY = f"""
name: clidemo
run_fn: {DEMO}
base: {{seed: 0, steps: 100, fail_at_step: null}}
axes:
  seed: [0, 1, 2]
quick:
  base: {{steps: 20}}
  axes: {{seed: [0]}}
"""


def test_study_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "clidemo.yaml"
    study.write_text(CLI_STUDY)
    monkeypatch.chdir(tmp_path)
    first = cli(capsys, monkeypatch, "study", "run", str(study), "--workers", "2")
    assert first.code == 0 and "3 done, 0 skipped, 0 failed" in first.out
    # piped (not a terminal), a plain line per finished run stands in for the live bar
    assert sorted(line.split()[0] for line in first.out.splitlines() if " done seed=" in line) == [
        "1/3",
        "2/3",
        "3/3",
    ]
    assert len(ResultStore.open(tmp_path / "studies" / "clidemo").finished_ids()) == 3
    again = cli(capsys, monkeypatch, "study", "run", str(study))
    assert again.code == 0 and "0 done, 3 skipped" in again.out
    quick = cli(capsys, monkeypatch, "study", "run", str(study), "--quick")
    assert (
        quick.code == 0
        and "1 done" in quick.out
        and (tmp_path / "studies" / "clidemo-quick").is_dir()
    )

    study.write_text(
        CLI_STUDY.replace("seed: [0, 1, 2]", "sed: [0, 1, 2]").replace("{seed: [0]}", "{}")
    )
    bad = cli(capsys, monkeypatch, "study", "run", str(study))
    assert (
        bad.code == 2
        and bad.err.count("\n") == 1
        and "axis 'sed' is not a key of the base config" in bad.err
    )
    unknown = cli(capsys, monkeypatch, "study", "run", "no_such_study")
    assert unknown.code == 2 and "unknown study 'no_such_study'" in unknown.err
    study.write_text(CLI_STUDY.replace("fail_at_step: null", "fail_at_step: 5"))
    failed = cli(capsys, monkeypatch, "study", "run", str(study), "--out", "f")
    assert failed.code == 1 and "3 failed" in failed.out
    assert cli(capsys, monkeypatch, "study", "list").code == 0
