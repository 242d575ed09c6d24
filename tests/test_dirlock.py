"""One writer per folder: a second writer fails at once, naming the holder; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from cli_runner import cli
from raremix.dirlock import INFO_FILE, dir_lock
from raremix.errors import RaremixError
from tiny_configs import tiny_config

HOLDER = rf"pid {os.getpid()} on {socket.gethostname()} \(since "


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with dir_lock(tmp_path, "run directory"):
        assert (tmp_path / INFO_FILE).is_file()
        refused = rf"run directory {tmp_path} is being written by {HOLDER}"
        with pytest.raises(RaremixError, match=refused), dir_lock(tmp_path, "run directory"):
            pass
    assert not (tmp_path / INFO_FILE).exists()
    with dir_lock(tmp_path):  # released: the next writer gets it
        pass


def test_train_and_study_run_refuse_a_locked_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: locked\nrun_fn: raremix.studies.runner:demo_run\n"
        "base: {seed: 0, steps: 20}\naxes: {seed: [0]}\n"
    )
    run, out = tmp_path / "run", tmp_path / "out"
    for folder, args in [
        (run, ["train", str(config), "--out", str(run)]),
        (out, ["study", "run", str(study), "--out", str(out)]),
    ]:
        with dir_lock(folder, "the test's lock"):
            got = cli(capsys, monkeypatch, *args)
        assert got.code == 2 and got.err.count("\n") == 1, got
        assert "is being written by pid" in got.err and str(os.getpid()) in got.err
        assert not list(folder.glob("*.jsonl")) and not (folder / "store").exists()  # untouched


def test_writing_a_mix_refuses_a_locked_folder(tmp_path: Path) -> None:
    from raremix.mixture import TableSources, build_sampler
    from raremix.tagged.mix import write_mixed

    tables = TableSources({"a": pa.table({"x": list(range(10))})})
    mix = build_sampler({"sources": [{"name": "a"}]}, tables.sizes, seed=0, batch_size=2).plan.spec
    with dir_lock(tmp_path / "shards"), pytest.raises(RaremixError, match=r"output folder .* pid"):
        write_mixed(mix, tables, tmp_path / "shards", seed=0, steps=3, batch_size=2)
    _, paths = write_mixed(mix, tables, tmp_path / "shards", seed=0, steps=3, batch_size=2)
    assert paths


@pytest.mark.slow
def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import time
        from raremix.dirlock import dir_lock
        with dir_lock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(RaremixError, match=f"pid {proc.pid} on"), dir_lock(tmp_path):
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (tmp_path / INFO_FILE).exists()  # the killed holder could not clean up…
    with dir_lock(tmp_path):  # …yet the OS released its lock: the folder is free at once
        assert str(os.getpid()) in (tmp_path / INFO_FILE).read_text()
