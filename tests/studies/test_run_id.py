"""One id per run, end to end: the run's directory name, its rows' `run`, the store's `run_id`."""

from __future__ import annotations

import json
from pathlib import Path

from raremix.results.rows import read_rows
from raremix.results.store import ResultStore
from raremix.studies.runner import run_study
from raremix.studies.spec import StudySpec, expand
from tiny_configs import tiny_config

DEMO = "raremix.studies.runner:demo_run"


def _ids(study: Path, run_id: str) -> dict[str, set[str]]:
    """Every id one run is known by: its directory, its rows, both store tables."""
    store = ResultStore.open(study)
    return {
        "dir": {(study / "runs" / run_id).name},
        "rows": set(read_rows(study / "runs" / run_id / "metrics.jsonl")["run"]),
        "store runs": set(store.sql(f"select run_id from runs where run_id = '{run_id}'").run_id),
        "store metrics": set(
            store.sql(f"select distinct run_id from metrics where run_id = '{run_id}'").run_id
        ),
    }


def test_a_trainer_study_run_has_one_id(tmp_path: Path) -> None:
    spec = StudySpec(name="ids", base=tiny_config(steps=20), axes={"seed": [0]})
    outcome = run_study(spec, tmp_path, workers=1, progress=False)
    (run,) = expand(spec)
    assert outcome.ok and outcome.done == [run.run_id]
    ids = _ids(tmp_path, run.run_id)
    assert list(ids) == ["dir", "rows", "store runs", "store metrics"]
    assert all(found == {run.run_id} for found in ids.values()), ids
    meta = json.loads((tmp_path / "runs" / run.run_id / "meta.json").read_text())
    assert meta["config_hash"] != run.run_id  # the config hash is a fact, not a second id


def test_a_run_dir_from_before_one_id_is_trained_afresh(tmp_path: Path) -> None:
    spec = StudySpec(
        name="ids",
        base={"seed": 0, "steps": 40, "dim": 8, "checkpoint_every": 20},
        axes={"seed": [0]},
        run_fn=DEMO,
    )
    (run,) = expand(spec)
    old = tmp_path / "runs" / run.run_id
    old.mkdir(parents=True)
    row = {"run": "0123456789ab", "step": 0, "task": "rare", "metric": "loss", "value": 1.0}
    (old / "metrics.jsonl").write_text(json.dumps(row) + "\n")  # the trainer's config hash

    outcome = run_study(spec, tmp_path, workers=1, progress=False)
    assert outcome.ok and outcome.done == [run.run_id]
    assert (tmp_path / "runs" / f"{run.run_id}.incomplete" / "metrics.jsonl").is_file()
    assert _ids(tmp_path, run.run_id)["rows"] == {run.run_id}
    assert _ids(tmp_path, run.run_id)["store metrics"] == {run.run_id}
