"""Reports: HTML and Markdown from a real tiny study and from hand-made stores."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_study import fake_study

from raremix.cli import main
from raremix.report import build_report
from raremix.report.build import _stale
from raremix.report.plots_curves import flat_probe, probe_table
from raremix.studies.analysis_final import load_study

CHROMIUM = shutil.which("chromium") or next(
    (p for p in ("/usr/bin/chromium",) if Path(p).exists()), None
)


def images(html: str) -> list[str]:
    return re.findall(r'<img src="(data:image/png;base64,[^"]+)"', html)


def test_report_of_a_real_study(reported: tuple[Path, str]) -> None:
    study, printed = reported
    assert f"report: {study / 'report.html'}" in printed
    html, md = (study / "report.html").read_text(), (study / "report.md").read_text()
    # the lab config probes by default: one figure per probe metric that moves (flat: named)
    data = load_study(study)
    probes = probe_table(data.metrics, data.runs)
    n_probe = sum(flat_probe(probes, m) is None for m in set(probes.metric))
    assert n_probe >= 5
    # the probes' weighted common gradient norm gives the "satisfied early" figure; no ledger ran
    from raremix.report import ledger_figures as lf

    assert lf.satisfied_figure(data.metrics, data.runs) is not None
    assert lf.ledger_figure(data.metrics, data.runs) is None
    # frontier, rare-task curves, per-task curves, satisfied-early, one per moving probe
    assert len(images(html)) == 3 + 1 + n_probe
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert "Compute-equivalence: " in html and html.count("How to read this") >= 3
    assert "<details>" in html and "batch_size: 32" in html  # the base config, collapsed
    assert "12k · natural" in html and "Runs" in html and "wall time" in html
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links[:3] == [
        "figures/frontier.png",
        "figures/rare_curves.png",
        "figures/task_curves.png",
    ]
    assert len(links) == 3 + 1 + n_probe
    assert all((study / link).stat().st_size > 10_000 for link in links[:3])
    assert "Probes" in md and "probe/interference" in md


def test_report_with_probes_and_forgetting(tmp_path: Path) -> None:
    _, md_path = build_report(fake_study(tmp_path, probes=True))
    md = md_path.read_text()
    assert "## Probes" in md
    for name in ("probe_interference.png", "probe_neuron_share.png"):
        assert f"figures/{name}" in md and (tmp_path / "figures" / name).exists()
    assert (tmp_path / "analysis" / "verdict.json").exists()  # analysed on the way
    assert "12k · natural" in md and "Acquire-then-forget" in md
    # a run added (or rerun) after the analysis makes it stale: the next report re-analyses
    assert not _stale(tmp_path)
    run_file = next((tmp_path / "store" / "runs").glob("*.parquet"))
    later = (tmp_path / "analysis" / "verdict.json").stat().st_mtime + 10
    os.utime(run_file, (later, later))
    assert _stale(tmp_path)


def test_report_of_the_theory_lab(theory: Path) -> None:
    html_path, md_path = build_report(theory)
    assert len(images(html_path.read_text())) == 1
    md = md_path.read_text()
    assert "figures/theory.png" in md and "precision_mean" in md and "top-N" in md


def test_cli_refuses_a_missing_or_empty_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in (tmp_path / "missing", tmp_path):
        monkeypatch.setattr(sys, "argv", ["raremix", "report", str(bad)])
        with pytest.raises(SystemExit) as ended:
            main()
        err = capsys.readouterr().err
        assert ended.value.code == 2 and err.count("\n") == 1 and "no study here" in err


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (make test installs it)")
def test_report_renders_in_a_browser(reported: tuple[Path, str], tmp_path: Path) -> None:
    import matplotlib.image

    assert CHROMIUM is not None
    html, shot = reported[0] / "report.html", tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = matplotlib.image.imread(shot)[..., :3]  # (H, W, 3) in [0, 1]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.1
    assert (pixels.min(axis=2) < 0.9).mean() > 0.05  # text, tables and plots: not a blank page


def test_probe_figure_shows_every_task_not_only_the_rare_one() -> None:
    import pandas as pd

    from raremix.report.plots_curves import probe_figure

    rows = [
        {
            "run_id": f"r{g}{seed}",
            "seed": seed,
            "size": "12k",
            "params": 16_560,
            "mix": mix,
            "group": f"12k · {mix}",
            "rare": ["compare"],
            "metric": "probe/grad_norm",
            "task": task,
            "step": step,
            "value": 1.0 + g + 0.1 * seed + 0.01 * step + (0.5 if task == "copy" else 0.0),
        }
        for g, mix in enumerate(("natural", "upweight"))
        for seed in (0, 1)
        for task in ("copy", "inc", "compare")
        for step in (0, 10, 20)
    ]
    fig = probe_figure(pd.DataFrame(rows), "probe/grad_norm", ["natural", "upweight"])
    assert len(fig.axes) == 3
    tasks_ax = fig.axes[2]
    assert [t.get_text() for t in tasks_ax.get_xticklabels()] == ["copy", "inc", "compare"]
    assert len(tasks_ax.patches) == 2 * 3  # a bar per group × task
    # a run-level probe (no per-task rows) keeps the two panels
    level = pd.DataFrame([{**r, "task": ""} for r in rows if r["task"] == "copy"])
    assert len(probe_figure(level, "probe/grad_norm", ["natural", "upweight"]).axes) == 2
