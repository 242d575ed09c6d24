"""Study analysis: final tables from a real tiny study, verdicts, the compute-equivalence."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raremix.configbase import packaged_configs
from raremix.errors import RaremixError
from raremix.results.store import ResultStore
from raremix.studies.analysis import Verdict, analyze_study, verdict_fn
from raremix.studies.analysis_final import (
    common_accuracy,
    final_table,
    forgetting_events,
    load_results,
    load_study,
)
from raremix.studies.equivalence import compute_equivalence, declared_target, target_times
from raremix.studies.registry import STUDIES
from raremix.studies.runner import ANALYZERS, DEFAULT_ANALYZER, RUN_FNS, resolve_run_fn
from raremix.studies.scale.verdict import scale_verdict
from raremix.studies.spec import load_spec
from raremix.tasks import in_heldout

_spec = importlib.util.spec_from_file_location(
    "tiny_study", Path(__file__).parents[1] / "report" / "tiny_study.py"
)
assert _spec and _spec.loader
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.real_study(tmp_path_factory)


# --- the compute-equivalence in the scale verdict: onsets known by construction ----------

ONSETS = [300, 400, 500, 400, 300, 500]
"""Six seeds' onset steps: Kaplan–Meier median 400, spread 300-500."""


def _equivalence_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("Compute-equivalence: "))


def test_a_designed_mix_k_times_cheaper_in_flops_gives_k_with_a_ci(tmp_path: Path) -> None:
    # the 8x larger natural model and the small up-weighted one learn at the same steps, so
    # the designed mix needs 1/8 of the FLOPs; the small natural model never learns
    onsets = {
        ("12k", "natural"): [None] * 6,
        ("100k", "natural"): ONSETS,
        ("12k", "upweight"): ONSETS,
    }
    v = analyze_study(tiny.onset_study(tmp_path, onsets), echo=False)
    line = _equivalence_line(v.lines)
    ratio, lo, hi = map(
        float, re.findall(r"^Compute-equivalence: ([\d.]+)× \[([\d.]+)×, ([\d.]+)×\]", line)[0]
    )
    assert ratio == pytest.approx(8.0) and 1 < lo < 8 < hi  # seed spread widens it, not past 1
    assert "indistinguishable" not in line
    assert "cheapest natural-mix option (100k · natural, 2.30e+11 FLOPs)" in line  # 96k·6k·400
    assert "cheapest designed option (12k · upweight, 2.88e+10 FLOPs)" in line
    assert "(the default: the study declares no hypotheses.target)" in line
    assert "12k · natural not reached by half its seeds (0 of 6 reached it)" in line
    assert "→ compute-equivalence 8× [" in v.headline


def test_identical_arms_are_indistinguishable(tmp_path: Path) -> None:
    onsets = {
        ("12k", "natural"): ONSETS,
        ("100k", "natural"): [None] * 6,
        ("12k", "upweight"): ONSETS,
    }
    v = analyze_study(tiny.onset_study(tmp_path, onsets), echo=False)
    assert _equivalence_line(v.lines).startswith("Compute-equivalence: ≈ (indistinguishable) 1× [")
    assert "→ compute-equivalence ≈ (indistinguishable) 1× [" in v.headline


def test_the_target_holds_the_common_tasks_to_their_natural_level(tmp_path: Path) -> None:
    # up-weighting teaches the small model the rare task at once but drops its common tasks
    # to 0.5: by the default target (within 0.05 of natural) it never gets there
    onsets = {
        ("12k", "natural"): [None] * 4,
        ("100k", "natural"): ONSETS[:4],
        ("12k", "upweight"): [200] * 4,
    }
    study = tiny.onset_study(tmp_path, onsets, common={("12k", "upweight"): 0.5})
    line = _equivalence_line(analyze_study(study, echo=False).lines)
    assert line.startswith("Compute-equivalence: 0× [0×, 0×] ")
    assert "the cheapest designed option (none reached it)" in line
    # a declared target that tolerates the loss (0.95 − 0.5 ≤ 0.5) counts it: 8× the params at
    # twice the steps (400 vs 200) is 16×
    results = load_results(study)
    spec = {**results.spec, "hypotheses": {"target": {"tolerance": 0.5}}}
    v = scale_verdict(replace(results, spec=spec), tmp_path / "declared")
    line = _equivalence_line(v.lines)
    assert line.startswith("Compute-equivalence: 16× [") and "within 0.5 of its" in line
    assert "declares no hypotheses.target" not in line


def test_forgetting_events() -> None:
    steps = np.array([0, 100, 200, 300, 400, 500])
    assert forgetting_events(steps, [0.0, 0.5, 0.9, 0.6, 0.95, 0.7]) == [
        (200, 0.9, 300, 0.6),
        (400, 0.95, 500, 0.7),
    ]
    assert forgetting_events(steps, [0.0, 0.5, 0.9, 0.75, 0.8, 0.9]) == []


# --- a real tiny study ------------------------------------------------------------------


def test_every_registered_analysis_has_its_functions() -> None:
    """The registry is the one place a study's identity lives: each record's verdict, run
    function and config type import, and the runner's analyzer finds them by `analysis:`."""
    assert set(ANALYZERS) == {DEFAULT_ANALYZER}
    for name, record in STUDIES.items():
        assert callable(verdict_fn(name)), name
        assert callable(resolve_run_fn(record.run_fn)), name
        assert record.run_fn in RUN_FNS


def test_a_renamed_copy_keeps_its_analysis_and_an_unknown_one_is_an_error(tmp_path: Path) -> None:
    shipped = Path(packaged_configs("studies")["injection"]).read_text()
    renamed = tmp_path / "my-injection.yaml"
    renamed.write_text(shipped.replace("name: injection", "name: my-injection"))
    spec = load_spec(renamed)
    assert spec.name == "my-injection" and spec.analysis == "injection"
    assert verdict_fn(spec.analysis) is verdict_fn("injection")
    renamed.write_text(shipped.replace("analysis: injection", "analysis: injecton"))
    with pytest.raises(
        RaremixError, match=r"unknown analysis 'injecton'.*did you mean 'injection'"
    ):
        load_spec(renamed)


def test_final_table_is_the_mean_of_the_last_three_evaluations(study: Path) -> None:
    final = pd.read_parquet(study / "analysis" / "final.parquet")
    runs = ResultStore.open(study).runs()
    assert len(final) == 4 * 6 and set(final.run_id) == set(runs.run_id)
    assert set(final["size"]) == {"12k", "25k"} and set(final.mix) == {"natural", "upweight"}
    assert set(final.group) == {
        f"{s} · {m}" for s in ("12k", "25k") for m in ("natural", "upweight")
    }
    assert set(final[final.role == "rare"].task) == {"compare"}
    assert (final.groupby("run_id").role.apply(lambda r: (r == "common").sum()) == 5).all()
    # recompute one value straight from the store
    m = ResultStore.open(study).metrics()
    row = final[(final.task == "compare") & (final.group == "12k · upweight")].iloc[0]
    acc = m[(m.run_id == row.run_id) & (m.task == "compare") & (m.metric == "acc")].sort_values(
        "step"
    )
    assert row.acc == pytest.approx(acc.value.tail(3).mean())
    assert row.params == runs.set_index("run_id").at[row.run_id, "params"]
    assert row.share > 0.2  # up-weighted ×10 from 3%
    assert final[(final.task == "compare") & (final.mix == "natural")].share.iloc[
        0
    ] == pytest.approx(0.03, abs=0.002)


def test_final_table_shows_n_and_baselines_beside_each_accuracy(study: Path) -> None:
    final = pd.read_parquet(study / "analysis" / "final.parquet")
    by_task = final.groupby("task")
    # eval_examples 32: every task fills it but majority of 7 letters and successor of 2
    # digits, whose 128 and 100 inputs hold out fewer (counted here from the split itself)
    letters = [format(i, "07b").replace("0", "o").replace("1", "x") for i in range(128)]
    small = {
        "majority": in_heldout(letters).sum(),
        "successor": in_heldout(list(map(str, range(100)))).sum(),
    }
    assert max(small.values()) < 32
    n = by_task.n.unique().to_dict()
    assert {t: n.pop(t).tolist() for t in small} == {t: [v] for t, v in small.items()}
    assert all(v.tolist() == [32] for v in n.values())
    assert final.chance.notna().all() and final.majority.notna().all()
    assert by_task.chance.first()["compare"] == pytest.approx(1 / 3)
    assert by_task.heuristic.first().notna().to_dict() == {
        "compare": True,
        "copy": False,
        "inc": False,
        "majority": True,
        "reverse": True,
        "successor": True,
    }


def test_common_accuracy_weights_each_task_by_its_n() -> None:
    final = pd.DataFrame(
        {
            "run_id": ["a", "a", "a", "b", "b"],
            "task": ["copy", "majority", "compare", "copy", "majority"],
            "role": ["common", "common", "rare", "common", "common"],
            "acc": [0.5, 1.0, 0.0, 0.5, 1.0],
            "n": [256, 18, 256, 256, math.nan],
        }
    )
    out = common_accuracy(final).set_index("run_id")
    assert out.at["a", "acc"] == pytest.approx((0.5 * 256 + 18) / 274)  # rare task left out
    assert out.at["a", "n"] == 274 and out.at["a", "tasks"] == 2
    assert out.at["b", "acc"] == pytest.approx(0.75) and math.isnan(out.at["b", "n"])
    rare = common_accuracy(final, role="rare").set_index("run_id")
    assert list(rare.index) == ["a"] and rare.at["a", "acc"] == 0


def test_runs_written_before_n_existed_get_nan_evidence(tmp_path: Path) -> None:
    final = final_table(load_study(tiny.fake_study(tmp_path)))  # rows: acc and loss only
    assert final[["n", "chance", "majority", "heuristic"]].isna().all().all()
    assert common_accuracy(final).n.isna().all()


def test_verdict_json_has_every_field_from_the_runs(study: Path) -> None:
    data = json.loads((study / "analysis" / "verdict.json").read_text())
    assert set(data) == {"study", "title", "headline", "lines", "table", "figures", "analysis"} | {
        "outcomes",
        "evidence",
        "provenance",
        "finding",
        "comparisons",
    }
    v = Verdict.load(study / "analysis")
    assert v.study == "scale-vs-mix" and "natural mix: 12k" in v.headline
    assert len(v.table["rows"]) == 4 and v.table["columns"][0] == "group"
    final = pd.read_parquet(study / "analysis" / "final.parquet")
    nat12 = final[(final.group == "12k · natural") & (final.role == "rare")].acc.mean()
    assert f"12k {nat12:.2f}" in v.headline  # the numbers come from the runs
    assert any(line.startswith("Larger vs smaller on the natural mix") for line in v.lines)
    # the compute-equivalence the verdict prints is the one its runs give; one seed per arm
    # leaves no interval to claim
    results = load_results(study)
    rule, target = declared_target(results.spec)
    eq = compute_equivalence(
        target_times(results.curves, results.final, results.runs, rule, target)
    )
    assert _equivalence_line(v.lines).startswith(f"Compute-equivalence: {eq.text()} = ")
    assert "no CI" in eq.text() or "undefined" in eq.text()
    assert all((study / "analysis" / f["file"]).exists() for f in v.figures)


# --- verdict logic on hand-made stores --------------------------------------------------


def test_scale_verdict_on_a_known_study(tmp_path: Path) -> None:
    accs = {("12k", "natural"): 0.3, ("100k", "natural"): 0.9, ("12k", "upweight"): 0.6}
    v = analyze_study(tiny.fake_study(tmp_path, rare_acc=accs), echo=False)
    # 100k natural learns at step 600 (both seeds); up-weighted 12k (0.6) never does
    assert (
        "→ compute-equivalence 0× [0×, 0×]: cheapest designed none reached the target vs "
        "cheapest natural 100k · natural" in v.headline
    )
    # each difference is a test with a CI; 2 seeds per arm cannot reach p < 0.05 (1/3 at best)
    assert v.lines[0].startswith("Larger vs smaller on the natural mix: rare acc 100k")
    assert "+0.60 [+0.57, +0.63], p = 0.333 (permutation (exact, 6 splits)" in v.lines[0]
    assert v.lines[1].startswith("Designed mix at 12k: upweight")
    assert "common tasks 0.91 → 0.91: +0.00" in v.lines[1]
    assert any(
        "Acquire-then-forget" in line
        and "in 2 of 6 runs: 12k · natural seed 0 compare: 0.70@500 → 0.30@600" in line
        for line in v.lines
    )


def test_scale_verdict_counts_the_seeds_that_learned_the_rare_task(tmp_path: Path) -> None:
    # each seed ends at its group's value + 0.01 × seed (seeds 0, 1, 2)
    accs = {("12k", "natural"): 0.2, ("100k", "natural"): 0.885, ("12k", "upweight"): 0.95}
    v = analyze_study(tiny.fake_study(tmp_path, rare_acc=accs, seeds=(0, 1, 2)), echo=False)
    assert v.lines[0].endswith("Seeds with rare acc ≥ 0.9: 1 of 3 vs 0 of 3.")
    assert "rare acc ≥ 0.9 in 3 of 3 seeds vs 0 of 3" in v.lines[1]
    table = dict(zip(v.table["columns"], zip(*v.table["rows"], strict=True), strict=True))
    assert table["rare ≥ 0.9"] == ("0 of 3", "1 of 3", "3 of 3")


def test_scale_verdict_says_plainly_when_the_effect_is_absent(tmp_path: Path) -> None:
    accs = {("12k", "natural"): 0.5, ("100k", "natural"): 0.52, ("12k", "upweight"): 0.9}
    v = analyze_study(tiny.fake_study(tmp_path, rare_acc=accs), echo=False)
    assert "+0.02 [-0.01, +0.05], p = 0.333" in v.lines[0]  # no effect, and a CI that says so
    # only the up-weighted 12k learns it: the natural mix never gets there at either size
    assert "→ compute-equivalence ∞ [∞, ∞]: cheapest designed 12k · upweight" in v.headline
    assert "12k · upweight 4.32e+10 FLOPs (2 of 2 reached it)" in v.lines[2]
    assert "100k · natural not reached by half its seeds (0 of 2 reached it)" in v.lines[2]


def test_injection_thresholds(tmp_path: Path) -> None:
    acc = {
        ("compare", "12k", "1/10 batches"): 0.1,
        ("compare", "12k", "2/batch"): 0.5,
        ("compare", "100k", "1/10 batches"): 0.3,
        ("modadd", "12k", "1/10 batches"): 0.2,
        ("modadd", "100k", "1/10 batches"): 0.2,
    }
    v = analyze_study(tiny.injection_study(tmp_path, acc), echo=False)
    final = pd.read_parquet(tmp_path / "analysis" / "final.parquet")
    assert {"rate", "rate_per_batch"} <= set(final.columns)
    per_batch = final.groupby("rate").rate_per_batch.first()
    assert per_batch["2/batch"] == pytest.approx(2.0) and per_batch[
        "1/10 batches"
    ] == pytest.approx(0.1)
    compare = next(line for line in v.lines if line.startswith("compare"))
    assert "12k from 8/batch, 100k from 2/batch" in compare and "yes" in compare
    modadd = next(line for line in v.lines if line.startswith("modadd"))
    assert "no: 12k and 100k need the same rate" in modadd
    assert (
        v.table["columns"][-1] == "learned from"
        and (tmp_path / "analysis/figures/heatmap.png").exists()
    )


def test_theory_quick(tmp_path_factory: pytest.TempPathFactory) -> None:
    study = tiny.theory_dir(tmp_path_factory)  # execute_study("theory", dir, quick=True), shared
    v = Verdict.load(study / "analysis")
    out = study / "analysis"
    for name in ("theory_features.parquet", "theory_summary.parquet", "figures/theory.png"):
        assert (out / name).exists(), name
    assert v.study == "theory" and "top-N features" in v.headline
    assert v.lines[-1].startswith("(12 runs")  # 2 seeds × (4 natural + 2 up-weighted widths)
    assert sorted({r[1] for r in v.table["rows"]}) == [4, 8, 16, 48]


def test_analysis_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RaremixError, match="no results store"):
        analyze_study(tmp_path)
    ResultStore(tmp_path / "store")
    with pytest.raises(RaremixError, match="no finished run"):
        analyze_study(tmp_path)
    ResultStore(tmp_path / "store").add_run(
        "r1", {"study": "x"}, [{"step": 0, "task": "a", "metric": "loss", "value": 1.0}]
    )
    with pytest.raises(RaremixError, match="no per-task 'acc' rows") as err:
        analyze_study(tmp_path)
    assert "\n" not in str(err.value)
    ANALYZERS[DEFAULT_ANALYZER](
        tmp_path
    )  # the runner's hook says so in one line, never fails the study
    assert "no analysis:" in capsys.readouterr().err
