"""Checkpoints: no pickle, checksums verified on resume, failed writes, reruns of finished runs."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cli_runner import cli
from limits import file_size_limit
from raremix.callbacks import Callback
from raremix.checkpoint import HASHED
from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.results.rows import read_rows
from raremix.trainer import train
from tiny_configs import tiny_config

CFG = tiny_config(steps=20, eval_every=10, checkpoint_every=10, eval_examples=16)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (checkpoints at 10 and 20), copied by each test that damages it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(load_config(data=CFG), run)
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def _resume_error(run: Path) -> str:
    """The one-line error that resuming `run` gives; the run's rows must be left as they were."""
    rows = (run / "metrics.jsonl").read_bytes()
    with pytest.raises(RaremixError) as err:
        train(load_config(data=CFG), run)
    assert (run / "metrics.jsonl").read_bytes() == rows, "a failed resume must not touch the rows"
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_checkpoint_is_safetensors_and_json_with_checksums(finished: Path) -> None:
    ckpt = finished / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([*HASHED, "meta.json"])
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["step"] == 20 and json.loads((ckpt / "state.json").read_text())["step"] == 20
    for name in HASHED:
        assert meta["files"][name] == hashlib.sha256((ckpt / name).read_bytes()).hexdigest()
    assert (
        not (finished / ".checkpoint.tmp").exists() and not (finished / ".checkpoint.old").exists()
    )


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes: still a well-formed safetensors file
    path.write_bytes(bytes(data))


def _edit_meta(**fields: object) -> Callable[[Path], None]:
    def edit(ckpt: Path) -> None:
        path = ckpt / "meta.json"
        meta = json.loads(path.read_text())
        for key, value in fields.items():
            if value is None:
                del meta[key]
            else:
                meta[key] = value
        path.write_text(json.dumps(meta))

    return edit


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated weights": (
        lambda c: _truncate(c / "model.safetensors"),
        "model.safetensors is damaged",
    ),
    "flipped bit in weights": (
        lambda c: _flip_bit(c / "model.safetensors"),
        "model.safetensors is damaged",
    ),
    "missing weights": (
        lambda c: (c / "model.safetensors").unlink(),
        "model.safetensors is missing",
    ),
    "missing state": (lambda c: (c / "state.json").unlink(), "state.json is missing"),
    "garbled state": (
        lambda c: (c / "state.json").write_text('{"step": 20, "optim'),
        "state.json is damaged",
    ),
    "missing optimizer tensors": (
        lambda c: (c / "state.safetensors").unlink(),
        "state.safetensors is missing",
    ),
    "truncated optimizer tensors": (
        lambda c: _truncate(c / "state.safetensors"),
        "state.safetensors is damaged",
    ),
    "missing meta.json": (lambda c: (c / "meta.json").unlink(), "meta.json is missing"),
    "garbled meta.json": (
        lambda c: (c / "meta.json").write_text('{"step": '),
        "meta.json is unreadable",
    ),
    "meta.json step a string": (_edit_meta(step="20"), "step must be a whole number"),
    "meta.json step negative": (_edit_meta(step=-1), "step must be a whole number"),
    "meta.json step moved": (_edit_meta(step=10), "meta.json says step 10, state.json says 20"),
    "meta.json without checksums": (_edit_meta(files=None), "lacks the sha256"),
    "meta.json of another format": (
        _edit_meta(format="x/9"),
        "not a raremix-checkpoint/2 manifest",
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_the_fix(
    finished: Path, tmp_path: Path, kind: str
) -> None:
    run = _copy(finished, tmp_path)
    damage, says = DAMAGE[kind]
    damage(run / "checkpoint")
    message = _resume_error(run)
    assert says in message
    assert str(run / "checkpoint") in message and "restart from step 0" in message


def test_without_resume_a_damaged_checkpoint_is_overwritten(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path)
    _flip_bit(run / "checkpoint" / "model.safetensors")
    train(load_config(data=CFG), run, resume=False)
    assert (run / "metrics.jsonl").read_bytes() == (finished / "metrics.jsonl").read_bytes()
    train(load_config(data=CFG), run)  # the new checkpoint verifies


class _Plant:
    """Unpickling this creates `marker`: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _payload(marker: Path) -> bytes:
    data = pickle.dumps(_Plant(marker))
    pickle.loads(data)  # the control: this payload really runs code when unpickled ...
    assert marker.exists()
    marker.unlink()  # ... so the marker's absence below means raremix did not unpickle it
    return data


def _rehash(ckpt: Path) -> None:
    """Recompute the checksums, as an attacker who crafts a whole checkpoint would."""
    _edit_meta(files={n: hashlib.sha256((ckpt / n).read_bytes()).hexdigest() for n in HASHED})(ckpt)


@pytest.mark.parametrize(
    "where", ["state.pt", "state.json", "state.safetensors", "model.safetensors"]
)
def test_a_malicious_pickle_in_a_checkpoint_runs_no_code(
    finished: Path, tmp_path: Path, where: str
) -> None:
    run, marker = _copy(finished, tmp_path), tmp_path / "pwned"
    ckpt = run / "checkpoint"
    if where == "state.pt":  # a checkpoint in the old format, whose state file was a pickle
        torch.save({"optimizer": _Plant(marker)}, ckpt / "state.pt")
        _edit_meta(format=None, files=None)(ckpt)
        assert not marker.exists()
        torch.load(ckpt / "state.pt", weights_only=False)  # the control: the old load ran it
        assert marker.exists()
        marker.unlink()
    else:
        (ckpt / where).write_bytes(_payload(marker))
        _rehash(ckpt)
    message = _resume_error(run)
    assert not marker.exists(), "loading the checkpoint ran the pickle's code"
    assert "restart from step 0" in message
    if where == "state.pt":
        assert "older raremix" in message


def test_a_malicious_checkpoint_via_the_cli_is_one_line_exit_2(
    finished: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, marker = _copy(finished, tmp_path), tmp_path / "pwned"
    (run / "checkpoint" / "state.json").write_bytes(_payload(marker))
    _rehash(run / "checkpoint")
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps(CFG))  # JSON is YAML
    result = cli(capsys, monkeypatch, "train", str(config), "--out", str(run))
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "state.json" in result.err and not marker.exists()


def test_rerunning_a_finished_run_keeps_its_summary(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["copy"]["acc"] >= 0  # the real last evaluation, not {}
    rows = (run / "metrics.jsonl").read_bytes()
    state = train(load_config(data=CFG), run)
    assert json.loads((run / "summary.json").read_text()) == summary
    assert state.facts == summary["facts"] and state.last_eval == summary["final"]
    assert state.step == 20 and (run / "metrics.jsonl").read_bytes() == rows
    # killed after the last checkpoint, before the summary: the rerun writes the real one
    (run / "summary.json").unlink()
    train(load_config(data=CFG), run)
    again = json.loads((run / "summary.json").read_text())
    assert again["final"] == summary["final"] and again["step"] == 20


class _StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
        if state.step == self.step:
            raise KeyboardInterrupt


def test_a_failed_checkpoint_write_keeps_the_last_good_one(finished: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # checkpoint at 10, killed at 15
        train(load_config(data=CFG), run, callbacks=[_StopAt(15)])
    good = {p.name: p.read_bytes() for p in (run / "checkpoint").iterdir()}
    weights = len(good["model.safetensors"])
    # the disk "fills up" (EFBIG past the limit): the next checkpoint's weights do not fit
    with file_size_limit(weights - 1), pytest.raises(RaremixError) as err:
        train(load_config(data=CFG), run)
    message = str(err.value)
    assert "\n" not in message and "cannot write the checkpoint of step 20" in message
    assert "File too large" in message and str(run / "checkpoint") in message
    assert {p.name: p.read_bytes() for p in (run / "checkpoint").iterdir()} == good
    assert not (run / ".checkpoint.tmp").exists()
    # with room again, the run resumes from step 10 to exactly the uninterrupted result
    train(load_config(data=CFG), run)
    assert read_rows(run / "metrics.jsonl").equals(read_rows(finished / "metrics.jsonl"))


class _PauseAt(Callback):
    def on_step_end(self, state) -> None:  # type: ignore[no-untyped-def]
        state.stop = state.step == 10


def test_a_run_paused_by_a_callback_resumes_rather_than_counting_as_finished(
    finished: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    assert train(load_config(data=CFG), run, callbacks=[_PauseAt()]).step == 10
    assert train(load_config(data=CFG), run).step == 20
    assert read_rows(run / "metrics.jsonl").equals(read_rows(finished / "metrics.jsonl"))
