"""The instructions study: output-space checks and the random baseline, and the quick study
end to end through the CLI (held-out tasks scored, format rows, a real verdict)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.results import ResultStore
from raremix.studies.output_space import (
    in_output_space,
    random_answers,
    random_baseline,
    sampled_baseline,
)
from raremix.tasks import TASKS, make_task

SUITE = [n for n in TASKS if not n.startswith("f")]  # the tool tasks declare no checked space


@pytest.mark.parametrize("name", SUITE)
def test_reference_and_random_answers_are_in_the_output_space(name: str) -> None:
    task = make_task(name)
    ex = task.generate(np.arange(100), seed=0, split="heldout")
    assert in_output_space(task, ex.inputs, ex.answers).all()
    assert in_output_space(task, ex.inputs, random_answers(task, ex.inputs, seed=1)).all()
    bad = ["", "#", ex.answers[0] + "##########"]
    assert not in_output_space(task, [ex.inputs[0]] * 3, bad).any()


def test_format_checks_are_about_shape_not_correctness() -> None:
    chain = make_task("chain", 5)
    assert in_output_space(chain, ["12345"] * 4, ["99999", "12345", "1234", "1234a"]).tolist() == [
        True,
        True,
        False,
        False,
    ]
    compare = make_task("compare")
    assert in_output_space(compare, ["1?2"] * 3, ["<", ">", "x"]).tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("name", "expected"), [("compare", 1 / 3), ("state", 0.1), ("majority", 0.5), ("parity", 0.5)]
)
def test_random_baseline_is_exact_and_sampling_agrees(name: str, expected: float) -> None:
    task = make_task(name)
    inputs = task.generate(np.arange(200), seed=0, split="heldout").inputs
    assert random_baseline(task, inputs) == pytest.approx(expected)
    assert sampled_baseline(task, inputs, draws=100) == pytest.approx(expected, abs=0.02)
    assert random_baseline(make_task("chain", 5), inputs=["12345", "123"]) == pytest.approx(
        (1e-5 + 1e-3) / 2
    )


def test_unknown_output_space_is_one_line_error() -> None:
    with pytest.raises(
        RaremixError, match="no format check for the output space 'answer with tool calls'"
    ):
        in_output_space(make_task("fcall"), ["akm:a1"], ["km(1)"])


@pytest.mark.slow
def test_quick_study_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ins"
    res = cli(capsys, monkeypatch, "study", "run", "instructions", "--quick", "--out", str(out))
    assert res.code == 0 and "2 done, 0 skipped, 0 failed" in res.out, res.out + res.err
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    # one seed (quick): no equivalence can be shown, so the claim is not supported
    assert verdict["finding"] == "inconclusive"
    assert [c["name"] for c in verdict["comparisons"]] == [
        "output_space − instruction, held-out acc",
        "instruction − random output-space answer, held-out acc",
    ]
    assert {c["call"] for c in verdict["comparisons"]} == {"untested"}
    assert {c["margin"] for c in verdict["comparisons"]} == {0.05}
    assert {o["outcome"] for o in verdict["outcomes"]} == {"out of regime"}
    groups = [r[0] for r in verdict["table"]["rows"]]
    assert groups == ["instruction", "output_space", "random output-space answer"]
    assert any(line.startswith("state: ") for line in verdict["lines"])
    m = ResultStore.open(out).metrics()
    held = {"sort", "chain", "state"}
    fmt = m[m.metric == "format"]
    assert held <= set(fmt.task) and fmt.value.between(0, 1).all()
    base = m[m.metric == "random_acc"].groupby("task")["value"].first()
    assert base["state"] == pytest.approx(0.1) and base["chain"] < 0.01
    runs = ResultStore.open(out).runs()
    assert set(runs.heldout_tasks) == {"sort,chain,state"}
    trained = m[(m.metric == "acc") & m.task.isin(["copy", "reverse"])]
    assert len(trained) and (out / "analysis" / "figures" / "instructions.png").exists()
