"""The decomposition study: held-out categories, the verdict's logic, and the quick study
end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import cli
from raremix.studies.analysis_final import StudyResults
from raremix.studies.decomposition.run import CATEGORIES, category_sets
from raremix.studies.decomposition.verdict import decomposition_verdict
from raremix.tasks import make_task
from raremix.tasks.tools import novelty


def test_category_sets_hold_what_their_names_say() -> None:
    sets = category_sets(make_task("fcall"), 40)
    assert list(sets) == list(CATEGORIES)
    for cat, (inputs, answers) in sets.items():
        assert 0 < len(inputs) <= 40 and len(set(inputs)) == len(inputs)
        assert set(novelty(inputs)) == {cat}
        assert make_task("fcall").verify(inputs, answers).all()
        assert make_task("fcall").in_heldout(inputs).all()


def as_results(final: pd.DataFrame) -> StudyResults:
    """A study holding only a final table: all the decomposition verdict reads."""
    empty = pd.DataFrame()
    return StudyResults(Path("."), "decomposition", "", {}, empty, empty, empty, final)


def fake_final(gains: dict[str, float], seeds: int = 5) -> pd.DataFrame:
    """A final table: the umbrella arm at 0.5 on every category, the other at 0.5 + gain."""
    rows = []
    for arm, share in (("umbrella", 1.0), ("umbrella+subtasks", 0.3)):
        for seed in range(seeds):
            run = f"{arm}-{seed}"
            noise = 0.01 * (seed - 2)
            for cat in (*CATEGORIES, ""):
                acc = 0.5 + noise + (gains.get(cat, 0.0) if arm != "umbrella" else 0.0)
                task = "fcall" + (f":{cat}" if cat else "")
                rows.append(
                    {
                        "run_id": run,
                        "seed": seed,
                        "group": f"100k · explicit · {arm}",
                        "task": task,
                        "acc": acc,
                        "share": share if not cat else float("nan"),
                    }
                )
            if arm != "umbrella":
                rows.append(
                    {
                        "run_id": run,
                        "seed": seed,
                        "group": f"100k · explicit · {arm}",
                        "task": "fname",
                        "acc": 0.9,
                        "share": 0.1,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("gains", "finding", "calls"),
    [
        ({"new-tool": 0.2, "new-composition": 0.1}, "supported", ("greater", "greater")),
        (
            {"new-tool": 0.2, "new-composition": 0.0},
            "inconclusive",
            ("greater", "indistinguishable"),
        ),
        ({"new-tool": -0.2, "new-composition": 0.01}, "inconclusive", ("indistinguishable",) * 2),
    ],
)
def test_verdict_follows_the_novel_categories(
    gains: dict[str, float], finding: str, calls: tuple[str, str], tmp_path: Path
) -> None:
    # 5 seeds: the fewest at which a one-sided exact test can pass Holm over the two categories
    v = decomposition_verdict(as_results(fake_final(gains)), tmp_path)
    assert v.finding == finding
    novel = [
        v.comparison(f"umbrella+subtasks − umbrella, {c}") for c in ("new-tool", "new-composition")
    ]
    assert tuple(c["call"] for c in novel) == calls
    assert novel[0]["effect"] == pytest.approx(gains["new-tool"])
    assert novel[0]["family"] != v.comparison("umbrella+subtasks − umbrella, seen")["family"]
    assert v.comparison("umbrella+subtasks − umbrella, seen")["call"] == "indistinguishable"
    assert [r[0] for r in v.table["rows"]] == ["umbrella", "umbrella+subtasks"]
    assert v.table["rows"][0][1] == "100%" and v.table["rows"][1][1] == "30%"
    assert v.table["rows"][1][-1] == 5 and "± 0.02" in v.table["rows"][0][2]
    assert (tmp_path / "figures" / "decomposition.png").stat().st_size > 5000


def test_three_seeds_cannot_support_the_claim(tmp_path: Path) -> None:
    # a 0.2 gain on both categories with sd 0.01: the old "beyond the larger sd" rule called
    # this reproduced; one-sided exact p cannot go below 1/20 at 3 vs 3 seeds
    gains = {"new-tool": 0.2, "new-composition": 0.2}
    v = decomposition_verdict(as_results(fake_final(gains, seeds=3)), tmp_path)
    assert v.finding == "inconclusive"
    assert all(c["p"] >= 0.05 for c in v.comparisons)


def test_verdict_says_when_nothing_was_learned(tmp_path: Path) -> None:
    final = fake_final({})
    final["acc"] = 0.0
    v = decomposition_verdict(as_results(final), tmp_path)
    assert v.finding == "inconclusive" and "neither arm learned fcall" in v.headline


@pytest.mark.slow
def test_quick_study_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dec"
    res = cli(capsys, monkeypatch, "study", "run", "decomposition", "--quick", "--out", str(out))
    assert res.code == 0 and "2 done, 0 skipped, 0 failed" in res.out, res.out + res.err
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    # one seed per arm: nothing is tested, so nothing is called
    assert verdict["finding"] == "inconclusive"
    assert {c["call"] for c in verdict["comparisons"]} == {"untested"}
    assert [o["id"] for o in verdict["outcomes"]] == ["granite", "subskill-worth"]
    assert verdict["outcomes"][0]["outcome"] == "out of regime"
    assert [r[0] for r in verdict["table"]["rows"]] == ["umbrella", "umbrella+subtasks"]
    assert "new-composition" in verdict["table"]["columns"]
    final = pd.read_parquet(out / "analysis" / "final.parquet")
    assert {f"fcall:{c}" for c in CATEGORIES} <= set(final.task)
    cats = final[final.task.str.startswith("fcall:")]
    assert (cats.n > 0).all() and (cats.n <= 16).all()  # quick: eval_examples 16 per category
    assert cats.chance.notna().all() and cats.majority.notna().all()
    assert {"fnest", "fresp"} <= set(final.task)  # the sub-tasks are trained and scored
    assert (out / "analysis" / "figures" / "decomposition.png").exists()
