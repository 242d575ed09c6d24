"""Plan and realised-versus-target tables, and the `raremix mix` command."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from raremix.mixture import build_sampler, plan_table, realised_report, resolve
from raremix.mixture.spec import MixtureConfig

MIX = {
    "strategy": "upweight",
    "params": {"factor": 10, "tasks": ["modadd"]},
    "mode": "stratified",
    "sources": [
        {"name": "copy", "size": 100_000},
        {"name": "modadd", "size": 200, "exhaustion": {"max_epochs": 3}},
        {"name": "sort", "size": 50_000, "exhaustion": "stop"},
    ],
}


def test_plan_table_without_exhaustion_is_closed_form() -> None:
    mix = MixtureConfig.model_validate(
        {
            "sources": [
                {"name": "a", "size": 10, "weight": 1},
                {"name": "b", "size": 10, "weight": 3},
            ]
        }
    )
    frame = plan_table(resolve(mix, total_steps=100), batch_size=8, total_steps=100)
    assert frame["examples"].tolist() == [200.0, 600.0]
    assert frame["epochs"].tolist() == [20.0, 60.0]
    assert frame["ends at step"].isna().all()


def test_plan_table_finds_when_sources_run_out() -> None:
    plan = resolve(MixtureConfig.model_validate(MIX), total_steps=2000, batch_size=32)
    frame = plan_table(plan, batch_size=32, total_steps=2000).set_index("source")
    assert frame.loc["modadd", "examples"] == 600  # 3 epochs of 200, then it leaves the mix
    assert frame.loc["modadd", "epochs"] == 3
    assert 1000 < frame.loc["modadd", "ends at step"] < 2000
    assert frame["examples"].sum() == 2000 * 32  # the others absorbed its share
    assert frame.loc["copy", "given"] == "upweight" and frame.loc["sort", "exhaustion"] == "stop"


def test_realised_report_tracks_targets() -> None:
    sampler = build_sampler(MIX, seed=0, batch_size=64, total_steps=50)
    for _ in range(50):
        sampler.next_batch()
    report = realised_report(sampler).set_index("source")
    assert report["drawn"].sum() == 50 * 64
    assert np.abs(report["drawn"] - report["expected"]).max() < 1  # stratified: within one example
    assert report["realised share"].to_numpy() == pytest.approx(
        report["target share"].to_numpy(), abs=1e-3
    )
    assert report.loc["modadd", "epochs"] == pytest.approx(report.loc["modadd", "drawn"] / 200)
    assert not report["exhausted"].any()


def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """Run `raremix ARGS` in-process through its real entry point: (exit code, stdout, stderr)."""
    from raremix.cli import main

    monkeypatch.setattr(sys, "argv", ["raremix", *args])
    code = 0
    try:
        main()
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"mixture": MIX, "model": {"ignored": "by mix"}}))
    code, out, err = cli(
        capsys, monkeypatch, "mix", str(cfg), "--steps", "400", "--batch-size", "32"
    )
    assert code == 0, err
    assert "modadd" in out and "max 3 epochs" in out and "12,800 examples" in out
    assert cli(capsys, monkeypatch, "mix", "plan", str(cfg))[0] == 0
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"sources": [{"name": "a"}]}))
    code, _, err = cli(capsys, monkeypatch, "mix", str(bare))
    assert code == 2
    assert err.strip() == (
        f"error: {bare}: source 'a' has no size: add 'size: N' (its number of examples) to it, or pass sizes={{'a': N}}"
    )
