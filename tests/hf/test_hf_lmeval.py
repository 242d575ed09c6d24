"""lm-evaluation-harness results JSON: the layout, lm-eval's standard error, and the export
of a `raremix train` run through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from raremix.config import load_config
from raremix.errors import RaremixError
from raremix.hf.lmeval import acc_stderr, lmeval_results, read_lmeval
from raremix.trainer import train
from tiny_configs import tiny_config


def test_layout_and_stderr() -> None:
    doc = lmeval_results(
        {"a": {"acc": 0.75, "loss": 0.4}, "b": {"acc": 1.0}},
        {"a": 5, "b": 1},
        model="hf",
        model_args="pretrained=m",
    )
    assert doc["results"]["a"] == {
        "alias": "a",
        "exact_match,none": 0.75,
        "exact_match_stderr,none": pytest.approx(0.2165, abs=1e-4),
        "loss,none": 0.4,
        "loss_stderr,none": "N/A",
    }
    assert (
        doc["results"]["b"]["exact_match_stderr,none"] == "N/A"
    )  # one example: lm-eval writes N/A
    assert doc["n-samples"]["a"] == {"original": 5, "effective": 5}
    assert doc["higher_is_better"]["a"] == {"exact_match": True, "loss": False}
    assert (
        doc["model_name"] == "m" and doc["model_name_sanitized"] == "m" and doc["task_hashes"] == {}
    )
    assert doc["versions"] == {"a": 1.0, "b": 1.0} and doc["n-shot"] == {"a": 0, "b": 0}
    assert doc["config"]["model_args"] == "pretrained=m"
    assert acc_stderr(0.5, 101) == pytest.approx(0.05)
    with pytest.raises(RaremixError, match="no example count for task 'a'"):
        lmeval_results({"a": {"acc": 1.0}}, {}, model="hf")


@pytest.mark.slow
def test_export_a_raremix_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from raremix.cli import main

    state = train(load_config(data=tiny_config(steps=20)), tmp_path)
    monkeypatch.setattr(sys, "argv", ["raremix", "export-lmeval", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    doc = read_lmeval(tmp_path)
    for task, m in state.last_eval.items():
        metric = (
            "acc" if doc["configs"][task]["metadata"]["scored_by"] == "verifier" else "exact_match"
        )
        assert doc["results"][task][f"{metric},none"] == m["acc"]
        assert 0 < doc["n-samples"][task]["effective"] <= 64  # distinct held-out inputs, capped
    assert doc["config"]["step"] == 20
