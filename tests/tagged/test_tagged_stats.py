"""Per-task statistics, the starvation warning, and `raremix inspect`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from cli_runner import cli
from raremix.tagged import starvation_lines, task_stats


def table(counts: dict[str, int]) -> pa.Table:
    rows = [
        {"task": t, "prompt": "p" * (i + 1), "response": "r" * (2 * i + 1)}
        for i, (t, n) in enumerate(counts.items())
        for _ in range(n)
    ]
    return pa.Table.from_pylist(rows)


def test_counts_shares_rarity_and_lengths() -> None:
    frame = task_stats(table({"mid": 300, "big": 9_650, "tiny": 50}))
    assert frame["task"].tolist() == ["big", "mid", "tiny"]
    assert frame["count"].tolist() == [9_650, 300, 50]
    assert frame["share"].sum() == pytest.approx(1.0)
    assert frame["share"].tolist() == pytest.approx([0.965, 0.03, 0.005])
    assert frame["rarity"].tolist() == [3, 2, 1]  # 1 = rarest
    assert frame["prompt chars"].tolist() == [2, 1, 3]
    assert frame["response chars"].tolist() == [3, 1, 5]
    assert frame["natural examples"].tolist() == [9_650, 300, 50]  # one pass by default


def test_starvation_fires_on_a_tiny_task_and_not_on_a_big_one() -> None:
    data = table({"big": 9_650, "mid": 300, "tiny": 50})
    frame = task_stats(data).set_index("task")
    assert frame.loc["big", "starved"] == "" and frame.loc["mid", "starved"] == ""
    assert frame.loc["tiny", "starved"] == "~50 examples < 100; 0.50% of the mix < 1%"
    # a long run sees 'tiny' often enough, but it is still under 1% of every batch
    long = task_stats(data, budget=1_000 * 64, batch_size=64).set_index("task")
    assert long.loc["tiny", "natural examples"] == pytest.approx(320)
    assert long.loc["tiny", "per batch"] == pytest.approx(0.32)
    assert long.loc["tiny", "starved"] == "0.50% of the mix < 1%"
    assert long.loc["mid", "starved"] == ""
    # the thresholds are knobs: a 5% floor flags 'mid' too
    strict = task_stats(data, min_share=0.05).set_index("task")
    assert strict.loc["mid", "starved"] == "3.00% of the mix < 5%"


def test_starvation_lines_name_the_task_and_the_fix() -> None:
    frame = task_stats(table({"big": 9_950, "tiny": 50}))
    lines = starvation_lines(frame, run="one pass")
    assert len(lines) == 2
    assert lines[0].startswith("'tiny' would be starved by the natural mix: 0.50% of the data")
    assert "tasks: [tiny]" in lines[1]
    assert starvation_lines(task_stats(table({"a": 500, "b": 500})), run="x") == []


def test_token_lengths_with_a_tokenizer() -> None:
    class Words:  # the call a HF tokenizer answers: texts → {"input_ids": [[…], …]}
        def __call__(
            self, texts: list[str], add_special_tokens: bool
        ) -> dict[str, list[list[int]]]:
            return {"input_ids": [[0] * len(t.split()) for t in texts]}

    data = pa.Table.from_pylist([{"task": "a", "prompt": "one two three", "response": "x y"}] * 3)
    frame = task_stats(data, tokenizer=Words())
    assert frame["prompt tokens"].tolist() == [3] and frame["response tokens"].tolist() == [2]


def test_inspect_cli_prints_the_table_warns_and_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = table({"big": 970, "tiny": 30}).to_pylist()
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{oops\n")
    monkeypatch.chdir(tmp_path)
    plot = tmp_path / "plots" / "tail.png"
    code, out, err = cli(
        capsys,
        monkeypatch,
        "inspect",
        str(path),
        "--skip-invalid",
        "--plot",
        str(plot),
        "--steps",
        "100",
        "--batch-size",
        "10",
    )
    assert code == 0, err
    assert "read 1,001 rows" in out and "1 invalid rows set aside → d.jsonl.rejected.jsonl" in out
    assert (tmp_path / "d.jsonl.rejected.jsonl").read_text().count("\n") == 1
    assert "warning: 'tiny' would be starved" in out and "'big' would" not in out
    assert "~30 examples over 100 steps × batch 10" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = cli(capsys, monkeypatch, "inspect", str(path))
    assert code == 2 and err.strip().startswith(f"error: {path}:1001: not valid JSON")
    code, _, err = cli(capsys, monkeypatch, "inspect", str(path), "--steps", "5")
    assert code == 2 and "--steps and --batch-size together" in err
