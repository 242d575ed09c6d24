"""Bring your own model: tiny random GPT-2 and Llama models built offline, trained on a raremix mix."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

from raremix.callbacks import Callback
from raremix.errors import RaremixError
from raremix.hf import load_hf_config, train_hf
from raremix.hf.lmeval import read_lmeval
from raremix.hf.tiny import char_tokenizer, tiny_model
from raremix.results.rows import load_rows

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz :<>\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers.utils import logging

    logging.disable_progress_bar()
    tok, root = char_tokenizer(CHARS), tmp_path_factory.mktemp("models")
    return {kind: tiny_model(kind, tok, root / kind) for kind in ("gpt2", "llama")}  # type: ignore[arg-type]


def tagged_rows() -> pa.Table:
    """A common task with one fixed answer ('yes', learnable in a few steps) and a rare,
    harder one (reverse three letters, not learned this fast)."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), 3)) for _ in range(240)]
    tasks = ["const"] * 200 + ["rev"] * 40
    responses = ["yes"] * 200 + [w[::-1] for w in words[200:]]
    return pa.table({"task": tasks, "prompt": [w + "\n" for w in words], "response": responses})


def tagged_config(model: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": str(model),
        "steps": 40,
        "batch_size": 16,
        "eval_every": 20,
        "checkpoint_every": 20,
        "eval_examples": 16,
        "threads": 1,
        "rare": ["rev"],
        "optim": {"lr": 1e-2, "warmup_steps": 5},
        "data": {"path": "unused.jsonl"},
        "heldout": 0.2,
        "mixture": {"sources": [{"name": "const"}, {"name": "rev"}]},
    }
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def gpt2_run(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("gpt2") / "run"
    train_hf(load_hf_config(data=tagged_config(models["gpt2"])), run_dir, table=tagged_rows())
    return run_dir


def final(run_dir: Path) -> dict[str, dict[str, float]]:
    rows = load_rows(run_dir / "metrics.jsonl")
    last = max(r["step"] for r in rows)
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["step"] == last and r["task"]:
            out.setdefault(r["task"], {})[r["metric"]] = r["value"]
    return out


@pytest.mark.slow
def test_gpt2_on_tagged_rows_learns_the_common_task_and_writes_lmeval(gpt2_run: Path) -> None:
    rows = load_rows(gpt2_run / "metrics.jsonl")
    acc = [(r["step"], r["task"]) for r in rows if r["metric"] == "acc"]
    assert sorted(acc) == [(s, t) for s in (0, 20, 40) for t in ("const", "rev")]
    end = final(gpt2_run)
    assert end["const"]["acc"] == 1.0  # exact match on held-out prompts, by greedy generation
    assert end["rev"]["acc"] < 0.5
    start = {r["task"]: r["value"] for r in rows if r["step"] == 0 and r["metric"] == "loss"}
    assert end["const"]["loss"] < start["const"] / 10

    doc = read_lmeval(gpt2_run)
    assert set(doc) >= {
        "results",
        "group_subtasks",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
    }
    for task, m in end.items():
        res, n = doc["results"][task], doc["n-samples"][task]["effective"]
        assert res["alias"] == task and res["exact_match,none"] == m["acc"]  # tagged rows
        assert res["exact_match_stderr,none"] == pytest.approx(
            (m["acc"] * (1 - m["acc"]) / (n - 1)) ** 0.5
        )
    assert doc["n-samples"]["const"]["effective"] == 16  # capped at eval_examples
    assert end["const"]["n"] == 16 and "chance" not in end["const"]  # tagged: no output space
    assert doc["configs"]["const"]["metadata"]["scored_by"] == "exact_match"

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(gpt2_run / "model").config.model_type == "gpt2"


class Interrupt(Callback):
    def on_step_end(self, state: Any) -> None:
        if state.step == 30:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resume_from_a_file_after_a_checkpoint_gives_the_same_metrics(
    models: dict[str, Path], gpt2_run: Path, tmp_path: Path
) -> None:
    # the same rows, this time read from a JSONL file with other column names (raremix.tagged)
    rows = tagged_rows().rename_columns(["kind", "q", "a"]).to_pylist()
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = {"path": str(tmp_path / "rows.jsonl"), "task": "kind", "prompt": "q", "response": "a"}
    cfg = load_hf_config(data=tagged_config(models["gpt2"], data=data))
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # killed at step 30; the checkpoint is at 20
        train_hf(cfg, run_dir, callbacks=[Interrupt()])
    assert json.loads((run_dir / "checkpoint" / "meta.json").read_text())["step"] == 20
    train_hf(cfg, run_dir)
    resumed, whole = load_rows(run_dir / "metrics.jsonl"), load_rows(gpt2_run / "metrics.jsonl")
    assert [{**r, "run": ""} for r in resumed] == [{**r, "run": ""} for r in whole]


@pytest.mark.slow
def test_llama_on_synthetic_tasks_through_the_cli_with_probes(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from raremix.cli import main

    cfg = {
        "model": str(models["llama"]),
        "steps": 10,
        "batch_size": 8,
        "eval_every": 10,
        "eval_examples": 8,
        "threads": 1,
        "framing": "token",
        "rare": ["successor"],
        "tasks": {"copy": {"complexity": 3}, "successor": {"complexity": 2}},
        "mixture": {"sources": [{"name": "copy", "size": 900}, {"name": "successor", "size": 100}]},
        "probes": {"batch": 8},  # all of them: neuron hooks find Llama's MLPs too
    }
    path = tmp_path / "hf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    monkeypatch.setattr(
        sys, "argv", ["raremix", "hf-train", str(path), "--set", "steps=6", "--out", str(out)]
    )
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    rows = load_rows(out / "metrics.jsonl")
    assert {(r["step"], r["task"]) for r in rows if r["metric"] == "acc"} == {
        (s, t) for s in (0, 6) for t in ("copy", "successor")
    }
    evidence = {(r["task"], r["metric"]): r["value"] for r in rows if r["step"] == 6}
    assert evidence["copy", "n"] == evidence["successor", "n"] == 8
    assert evidence["successor", "chance"] == 1 / 1000 and ("successor", "heuristic") in evidence
    assert {
        "probe/interference",
        "probe/first_order",
        "probe/neuron_share",
        "probe/entropy",
        "probe/probe_task_acc",
    } <= {r["metric"] for r in rows}
    doc = read_lmeval(out)
    assert doc["configs"]["copy"]["metadata"]["scored_by"] == "verifier"
    assert doc["config"]["model_args"] == f"pretrained={models['llama']}"


def test_config_errors_name_the_fix(tmp_path: Path) -> None:
    base = tagged_config(tmp_path)
    with pytest.raises(RaremixError, match="unknown key 'stpes'"):
        load_hf_config(data=base, overrides=["stpes=3"])
    with pytest.raises(RaremixError, match="give `data` or `tasks`, not both"):
        load_hf_config(data={**base, "tasks": {"copy": {}}})
    with pytest.raises(RaremixError, match="unknown task 'coppy': did you mean 'copy'"):
        load_hf_config(data={**base, "data": None, "tasks": {"coppy": {}}})


@pytest.mark.slow
def test_rerunning_a_finished_run_keeps_its_summary_and_lmeval(
    models: dict[str, Path], gpt2_run: Path, tmp_path: Path
) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(gpt2_run, run_dir)
    summary, doc = json.loads((run_dir / "summary.json").read_text()), read_lmeval(run_dir)
    assert summary["final"]["const"]["acc"] == 1.0  # the real last evaluation, not {}
    state = train_hf(
        load_hf_config(data=tagged_config(models["gpt2"])), run_dir, table=tagged_rows()
    )
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert read_lmeval(run_dir) == doc and state.facts == summary["facts"]
