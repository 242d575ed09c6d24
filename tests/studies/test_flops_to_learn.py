"""FLOPs-to-learn, arm views and compute-equivalence: small cases checked by hand, and the
bigger-longer-remixed study in miniature."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raremix.configbase import load, packaged_configs
from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule
from raremix.stats import logrank
from raremix.studies.equivalence import Target, compute_equivalence, is_natural, km_median
from raremix.studies.flops_to_learn import compare_flops_to_learn, onset_table
from raremix.studies.hypotheses import Declaration
from raremix.studies.views import ArmView

STUDY = packaged_configs("studies")["bigger-longer-remixed"]
FPS = 1e6  # FLOPs per step of the synthetic runs


def _curves(
    onset_step: int | None, steps: int = 400, every: int = 20, run: str = "r"
) -> pd.DataFrame:
    """A rare task's curve: 0.05 until `onset_step`, 0.97 from it on (None: never)."""
    s = np.arange(0, steps + 1, every)
    acc = np.where(s >= (onset_step if onset_step is not None else steps + 1), 0.97, 0.05)
    return pd.DataFrame(
        {
            "run_id": run,
            "seed": 0,
            "group": "g",
            "size": "12k",
            "params": 12e3,
            "mix": "natural",
            "task": "rare",
            "role": "rare",
            "step": s,
            "acc": acc,
        }
    )


def _runs(ids: list[str], steps: int = 400, schedule: str = "constant") -> pd.DataFrame:
    config = json.dumps({"steps": steps, "optim": {"schedule": schedule}, "mixture": {}})
    return pd.DataFrame(
        {
            "run_id": ids,
            "flops_per_step": FPS,
            "flops": FPS * steps,
            "config": config,
            "shares": [{"rare": 0.01}] * len(ids),
        }
    )


@pytest.mark.parametrize("onset", [37, 120, 301])
def test_an_onset_known_by_construction_is_located_within_one_eval_interval(onset: int) -> None:
    rule = LearnedRule(threshold=0.9, consecutive=2)
    table = onset_table(_curves(onset), _runs(["r"]), rule)
    (row,) = table.to_dict("records")
    assert row["learned"]
    assert onset * FPS <= row["flops_to_learn"] < (onset + 20) * FPS  # the first eval after it


def test_a_run_that_never_learns_is_censored_at_its_cap() -> None:
    (row,) = onset_table(_curves(None), _runs(["r"]), LearnedRule()).to_dict("records")
    assert not row["learned"] and row["flops_to_learn"] == 400 * FPS


def test_logrank_agrees_with_the_hand_computed_small_case() -> None:
    # arm A learns at 1 and 3, arm B at 2 and is censored at 4. By hand (observed − expected
    # in A over the event times 1, 2, 3; variance sum of hypergeometric variances):
    # t=1: 4 at risk (2 A), d=1 → E_A=.5, V=.25; t=2: 3 at risk (1 A), d=1 → E_A=1/3, V=2/9;
    # t=3: 2 at risk (1 A), d=1 → E_A=.5, V=.25. O_A=2, E_A=4/3, V=13/18 → χ² = (2/3)²/(13/18).
    r = logrank([1, 3], [True, True], [2, 4], [True, False])
    chi2 = (2 - 4 / 3) ** 2 / (13 / 18)
    assert r["statistic"] == pytest.approx(chi2, rel=1e-9)
    from scipy.stats import chi2 as dist

    assert r["p"] == pytest.approx(dist.sf(chi2, 1), rel=1e-9)


def test_km_median_is_lifelines_median_when_censoring_is_at_the_cap() -> None:
    from lifelines import KaplanMeierFitter

    t = np.array([3.0, 1.0, 7.0, 9.0, 9.0, 4.0])
    e = np.array([True, True, True, False, False, True])
    assert km_median(t, e) == KaplanMeierFitter().fit(t, e).median_survival_time_
    assert math.isinf(km_median(t, np.zeros(6, bool)))


def test_flops_to_learn_comparison_finds_a_clear_effect_and_types_direction() -> None:
    early = (np.array([1e9, 1.2e9, 0.9e9, 1.1e9, 1.3e9]), np.ones(5, bool))
    late = (np.array([8e9, 9e9, 1e10, 1e10, 1e10]), np.array([1, 1, 0, 0, 0], bool))
    c = compare_flops_to_learn(early, late, direction="less", alpha=0.05)
    assert c.effect < -0.8 and c.p < 0.01  # ≈ 10× fewer FLOPs, restricted at τ = 1e10
    assert "log-rank p" in c.test and "restricted mean log10" in c.test


def _times(groups: dict[str, tuple[bool, list[float], list[bool]]]) -> pd.DataFrame:
    rows = [
        {"group": g, "natural": nat, "params": 1.0, "flops": t, "reached": r}
        for g, (nat, ts, rs) in groups.items()
        for t, r in zip(ts, rs, strict=True)
    ]
    return pd.DataFrame(rows)


def test_compute_equivalence_of_identical_arms_includes_one() -> None:
    t, r = [1e9, 2e9, 3e9, 4e9, 5e9, 6e9], [True] * 5 + [False]
    eq = compute_equivalence(_times({"natural": (True, t, r), "designed": (False, t, r)}))
    assert eq.ratio == pytest.approx(1.0) and eq.ci[0] <= 1 <= eq.ci[1]
    assert eq.indistinguishable and eq.text().startswith("≈ (indistinguishable)")


def test_compute_equivalence_prices_the_cheapest_option_on_each_side() -> None:
    fast = [1e9, 1.1e9, 0.9e9, 1.05e9, 0.95e9, 1e9]
    slow = [8e9, 8.5e9, 7.5e9, 8e9, 8.2e9, 7.9e9]
    never = [1e10] * 6
    eq = compute_equivalence(
        _times(
            {
                "natural-small": (True, never, [False] * 6),
                "natural-big": (True, slow, [True] * 6),
                "upweight-small": (False, fast, [True] * 6),
            }
        )
    )
    assert eq.natural == "natural-big" and eq.designed == "upweight-small"
    assert eq.ratio == pytest.approx(8e9 / 1e9) and eq.ci[0] > 1
    assert not eq.indistinguishable


def test_one_seed_in_an_arm_gives_a_ratio_without_a_ci() -> None:
    eq = compute_equivalence(
        _times({"natural": (True, [4e9], [True]), "designed": (False, [1e9, 2e9], [True, True])})
    )
    assert eq.ratio == pytest.approx(2.0) and all(math.isnan(x) for x in eq.ci)
    assert eq.text() == "≈ (indistinguishable: an arm has one seed, so no CI) 2×"


def test_a_spaced_or_stratified_draw_is_a_designed_mix() -> None:
    sources = [{"name": "copy", "size": 100}, {"name": "compare", "size": 3}]
    assert is_natural({"mixture": {"strategy": "natural", "sources": sources}})
    spaced = [sources[0], {**sources[1], "every": 4}]
    assert not is_natural({"mixture": {"strategy": "natural", "sources": spaced}})
    assert not is_natural({"mixture": {"sources": sources, "mode": "stratified"}})
    assert not is_natural({"mixture": {"strategy": "upweight", "sources": sources}})


def test_a_view_is_the_source_run_cut_at_its_cap() -> None:
    from raremix.studies.analysis_final import StudyData
    from raremix.studies.views import apply_views

    runs = _runs(["a"]).assign(**{"arm": "long", "group": "long"})
    study = StudyData(Path("."), "s", "", {}, runs, pd.DataFrame())
    view = ArmView(name="short", of={"arm": "long"}, cap_steps=100)
    study2, curves = apply_views(study, _curves(240, run="a").assign(group="long"), [view])
    short = curves[curves.group == "short"]
    assert short.step.max() == 100 and len(study2.runs) == 2
    table = onset_table(curves, study2.runs, LearnedRule()).set_index("group")
    assert table.loc["long", "learned"] and not table.loc["short", "learned"]
    assert table.loc["short", "flops_to_learn"] == 100 * FPS  # censored at the view's cap
    with pytest.raises(RaremixError, match="prefix is not a shorter run"):
        apply_views(
            replace_study(study, _runs(["a"], schedule="cosine")),
            _curves(240, run="a").assign(group="long"),
            [view],
        )
    with pytest.raises(RaremixError, match="below one training step"):
        apply_views(
            study,
            _curves(240, run="a").assign(group="long"),
            [ArmView(name="x", of={"arm": "long"}, cap_flops=10)],
        )


def replace_study(study: object, runs: pd.DataFrame) -> object:
    from dataclasses import replace

    return replace(study, runs=runs.assign(**{"arm": "long", "group": "long"}))  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": {"rare": ["nosuch"]}}, "unknown task 'nosuch'"),
        ({"learned": {"threshold": 1.5}}, "less than or equal to 1"),
        ({"views": [{"name": "v", "of": {"arm": "nosuch"}, "cap_steps": 10}]}, "not an arm"),
    ],
)
def test_bad_declarations_are_one_line(change: dict[str, object], message: str) -> None:
    import yaml

    from raremix.studies.spec import load_spec

    spec = yaml.safe_load(STUDY.read_text())
    spec["hypotheses"].update(change)
    with pytest.raises(RaremixError, match=message) as err:
        path = Path(pytest.importorskip("tempfile").mkdtemp()) / "s.yaml"
        spec["base"]["tasks"] = spec["base"]["tasks"]
        path.write_text(yaml.safe_dump(spec))
        load_spec(path)
    assert "\n" not in str(err.value)


def test_the_declaration_accepts_flops_to_learn_and_views() -> None:
    import yaml

    raw = yaml.safe_load(STUDY.read_text())["hypotheses"]
    d = load(Declaration, raw)
    assert d.tests[0].metric == "flops_to_learn" and d.views[0].name == "natural-12k-equal"
    assert isinstance(d.target, Target)


@pytest.mark.slow
def test_the_study_in_miniature_yields_typed_outcomes(tmp_path: Path) -> None:
    from raremix.stats import OUTCOMES
    from raremix.studies.analysis import Verdict
    from raremix.studies.runner import run_study
    from raremix.studies.spec import load_spec, prepare_study

    spec = prepare_study(load_spec(STUDY), quick=True, confirm=True)
    outcome = run_study(spec, tmp_path, workers=2, progress=False)
    assert outcome.ok and outcome.analyzed
    v = Verdict.load(tmp_path / "analysis")
    assert v.analysis == "bigger-longer" and v.finding in OUTCOMES
    assert [o["id"] for o in v.outcomes] == [h.id for h in spec.hypotheses.tests]  # type: ignore[union-attr]
    assert all(o["outcome"] in OUTCOMES for o in v.outcomes)
    arms = {row[2] for row in v.table["rows"]}
    assert "natural-12k-equal" in arms  # the declared view is an arm of the verdict
    assert (tmp_path / "analysis" / "figures" / "km_flops.png").exists()
    assert "Log-rank p" in v.figures[0]["caption"]
