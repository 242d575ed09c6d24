"""`raremix mix write` survives being killed, and a damaged state or manifest is one line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cli_runner import Result, cli
from raremix.mixture import read_shards

ROOT = Path(__file__).resolve().parents[2]
TASKS = {"common": 60, "mid": 25, "rare": 5}


@pytest.fixture
def raremix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    return lambda *args: cli(capsys, monkeypatch, *args)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """(mixture YAML with a data path, the JSONL it names)."""
    data = tmp_path / "data.jsonl"
    rows = [
        {"task": task, "prompt": f"{task} {i}", "response": f"r{i}"}
        for task, n in TASKS.items()
        for i in range(n)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "mix.yaml"
    mixture = {"strategy": "temperature", "params": {"tau": 2}}
    config.write_text(yaml.safe_dump({"mixture": mixture, "data": {"path": "data.jsonl"}}))
    return config, data


def write_args(config: Path, out: Path, steps: int = 60) -> list[str]:
    return [
        "mix",
        "write",
        str(config),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch-size",
        "4",
        "--shard-rows",
        "8",
        "--seed",
        "1",
    ]


DAMAGE = {
    "empty": "",
    "torn": '{"format": 1, "seed": 1, "na',
    "a list": "[1, 2]",
    "not a state": '{"format": "other"}',
    "keys missing": '{"format": 1}',
}


@pytest.mark.parametrize("content", list(DAMAGE))
def test_a_damaged_sampler_state_is_one_line_and_deleting_it_recovers(
    setup: tuple[Path, Path], tmp_path: Path, raremix, content: str
) -> None:
    config, _ = setup
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert raremix(*write_args(config, whole)).code == 0
    assert raremix(*write_args(config, out)).code == 0
    state = out / "state-rank0.json"
    real = json.loads(state.read_text())
    state.write_text(DAMAGE[content].replace('"format": 1', f'"format": {real["format"]!r}'))
    result = raremix(*write_args(config, out))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"{state}: damaged sampler state" in result.err
    assert "delete that file and rerun" in result.err
    state.unlink()  # the fix the line names
    assert raremix(*write_args(config, out)).code == 0
    assert read_shards(out).equals(read_shards(whole))


def test_a_damaged_manifest_is_one_line(setup: tuple[Path, Path], tmp_path: Path, raremix) -> None:
    config, _ = setup
    out = tmp_path / "out"
    assert raremix(*write_args(config, out)).code == 0
    for text in ("", "[]", "{"):
        (out / "manifest.json").write_text(text)
        result = raremix(*write_args(config, out))
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert "manifest.json: damaged manifest" in result.err and "delete the folder" in result.err


@pytest.mark.slow
def test_killed_at_any_instant_a_rerun_finishes_the_same_stream(
    setup: tuple[Path, Path], tmp_path: Path, raremix
) -> None:
    """SIGKILL `raremix mix write` mid-stream, three times; the rerun still yields exactly
    the shards of an uninterrupted write (no 0-byte state, no torn shard survives)."""
    config, _ = setup
    steps = 400  # one shard per 2 steps: hundreds of shard and state writes to land in
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert raremix(*write_args(config, whole, steps)).code == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rng = random.Random(0)
    kills: list[int] = []  # shards on disk at each kill
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "raremix", *write_args(config, out, steps)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        before = len(list(out.glob("part-*"))) if out.exists() else 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and len(list(out.glob("part-*"))) > before:
                break  # writing has started: kill it somewhere in the stream
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(len(list(out.glob("part-*"))))
    assert kills[0] > 0 and kills[-1] < steps // 2, kills  # the kills landed mid-stream
    result = raremix(*write_args(config, out, steps))
    assert result.code == 0, result.err
    assert read_shards(out).equals(read_shards(whole))
    assert not list(out.glob(".*.tmp"))  # no temp file left to confuse a reader
