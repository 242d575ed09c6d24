"""Curricula: each ordering, the schedules they generate, the config path, and its errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.config import load_config
from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.mixture import MixtureConfig, build_sampler, resolve
from raremix.mixture.curricula import (
    CURRICULA,
    TaskFacts,
    curriculum_order,
    curriculum_schedule,
    forgetting_cost,
    min_forgetting_order,
    task_facts,
)
from raremix.mixture.spec import CurriculumSpec
from raremix.studies.ordering.run import MEASURED_FILE, MeasureAt, run_ordering
from raremix.trainer import train
from tiny_configs import tiny_config

NAMES = ("copy", "inc", "compare", "permute", "bigger")
SIZES = {"copy": 1000, "inc": 400, "compare": 30, "permute": 200, "bigger": 60}


def mix(**curriculum: Any) -> dict[str, Any]:
    return {
        "strategy": "natural",
        "sources": [{"name": n, "size": SIZES[n]} for n in NAMES],
        "curriculum": curriculum,
    }


def plan(**curriculum: Any) -> Any:
    return resolve(load(MixtureConfig, mix(**curriculum), "mixture"), batch_size=8, total_steps=100)


def facts(**over: Any) -> TaskFacts:
    freq = np.array([SIZES[n] for n in NAMES], dtype=float)
    base: dict[str, Any] = {
        "names": NAMES,
        "frequency": freq / freq.sum(),
        "kinds": {
            "copy": "structured",
            "inc": "structured",
            "compare": "structured",
            "permute": "open",
            "bigger": "open",
        },
        "difficulty": {"copy": 0.5, "inc": 0.1, "compare": 0.9, "permute": 0.3, "bigger": 0.0},
        "losses": {"copy": 1.0, "inc": 2.0, "compare": 0.5, "permute": 3.0, "bigger": 0.1},
    }
    return TaskFacts(**{**base, **over})


def order(kind: str, **spec: Any) -> list[str]:
    return curriculum_order(CurriculumSpec(kind=kind, **spec), facts())


def test_each_ordering_ranks_by_its_facts() -> None:
    assert order("rarity-first") == ["compare", "bigger", "permute", "inc", "copy"]  # by size
    assert order("rarity-first", by="loss") == ["permute", "inc", "copy", "compare", "bigger"]
    assert order("easy-to-hard") == ["bigger", "inc", "permute", "copy", "compare"]
    assert order("easy-to-hard", by="loss") == order("rarity-first", by="loss")[::-1]
    assert order("structured-first") == ["copy", "inc", "compare", "permute", "bigger"]
    assert order("open-first") == ["permute", "bigger", "copy", "inc", "compare"]
    assert order("rarity-first", tasks=["copy", "compare"]) == ["compare", "copy"]
    shuffled = [order("random", seed=s) for s in range(6)]
    assert all(sorted(o) == sorted(NAMES) for o in shuffled)
    assert shuffled[0] == order("random", seed=0) and len({tuple(o) for o in shuffled}) > 1


def test_bwt_guided_is_the_exact_minimum_and_greedy_finds_a_zero_cost_order() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 5))
    best = min(forgetting_cost(p, f) for p in itertools.permutations(range(5)))
    assert forgetting_cost(min_forgetting_order(f), f) == pytest.approx(best)
    # 9 tasks (greedy): training a later-indexed task never hurts earlier ones, others do
    n = 9
    g = np.triu(rng.uniform(0.1, 1.0, size=(n, n)), 1)  # F[a, b] > 0 only for a < b
    perm = rng.permutation(n)
    shuffled = g[np.ix_(perm, perm)]
    found = min_forgetting_order(shuffled)
    assert forgetting_cost(found, shuffled) == 0.0
    assert [int(perm[i]) for i in found] == list(range(n))
    named = facts(forgetting=f)
    got = curriculum_order(CurriculumSpec(kind="bwt-guided"), named)
    assert got == [NAMES[i] for i in min_forgetting_order(f)]


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(CURRICULA)),
    base_fraction=st.sampled_from([0.0, 0.25, 0.5]),
    stages=st.integers(1, 5),
    focus=st.floats(0.1, 1.0),
    seed=st.integers(0, 100),
)
def test_generated_schedules_are_valid_and_order_only_changes_the_order(
    kind: str, base_fraction: float, stages: int, focus: float, seed: int
) -> None:
    two = kind in ("structured-first", "open-first")
    spec = CurriculumSpec(
        kind=kind,
        base_fraction=base_fraction,
        stages=None if two else stages,
        focus=focus,
        seed=seed,
        base_tasks=["copy", "inc"],
    )
    f = facts(forgetting=np.random.default_rng(seed).normal(size=(5, 5)))
    sched = curriculum_schedule(spec, f)
    n_stages = 2 if two else stages
    starts = [p.start for p in sched.phases]
    expected = [base_fraction + (1 - base_fraction) * k / n_stages for k in range(n_stages)]
    assert starts == pytest.approx(([0.0] if base_fraction else []) + expected)
    for p in sched.phases:
        w = np.array(list(p.weights.values()))  # type: ignore[union-attr]
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    if base_fraction:  # the base phase trains the base tasks only, in base proportions
        w0 = sched.phases[0].weights
        assert (
            w0 is not None and w0["compare"] == 0 and w0["copy"] / w0["inc"] == pytest.approx(2.5)
        )
    # each task is focused in exactly one stage: summed over stages, every order gives the same totals
    stage_w = np.array(
        [list(p.weights.values()) for p in sched.phases[1 if base_fraction else 0 :]]
    )  # type: ignore[union-attr]
    if not two:
        random_spec = spec.model_copy(update={"kind": "random"})
        rw = curriculum_schedule(random_spec, f).phases[1 if base_fraction else 0 :]
        other = np.array([list(p.weights.values()) for p in rw])  # type: ignore[union-attr]
        if stages == 5:  # one task per stage: equal-length stages give equal totals
            np.testing.assert_allclose(stage_w.sum(0), other.sum(0))


def test_config_path_draws_follow_the_phases() -> None:
    m = mix(kind="structured-first", base_fraction=0.5, base_tasks=["copy", "inc"], focus=1.0)
    sampler = build_sampler(m, seed=0, batch_size=64, total_steps=40)
    names = sampler.names
    drawn = [{names[i] for i in np.unique(sampler.next_batch()[0])} for _ in range(40)]
    assert set().union(*drawn[:20]) == {"copy", "inc"}
    assert set().union(*drawn[20:30]) == {"copy", "inc", "compare"}  # structured stage
    assert set().union(*drawn[30:]) == {"permute", "bigger"}  # open stage
    p = plan(kind="rarity-first", stages=5)
    assert list(p.schedule.starts) == [0, 20, 40, 60, 80]
    assert [names[int(np.argmax(v))] for v in p.schedule.vectors] == [
        "compare",
        "bigger",
        "permute",
        "inc",
        "copy",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            mix(kind="rarity-frist"),
            "unknown curriculum 'rarity-frist': did you mean 'rarity-first'",
        ),
        (
            {**mix(kind="random", seed=0), "schedule": {"phases": [{"start": 0}]}},
            "both schedule and curriculum are given",
        ),
        (mix(kind="structured-first", by="loss"), "cannot rank by loss: drop by"),
        (
            mix(kind="easy-to-hard", by="frequency"),
            "cannot rank by frequency: use one of: complexity, loss",
        ),
        (
            mix(kind="rarity-first", losses={"cpy": 1.0}),
            "curriculum.losses: unknown source 'cpy': did you mean 'copy'",
        ),
        (mix(kind="rarity-first", focus=0), "focus"),
        (mix(kind="rarity-first", base_fraction=1), "base_fraction"),
    ],
)
def test_config_errors_are_one_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RaremixError, match=message) as err:
        load(MixtureConfig, data, "config.mixture")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("curriculum", "message"),
    [
        (
            {"kind": "rarity-first", "by": "loss"},
            "curriculum.losses misses task 'copy': .*run_ordering",
        ),
        ({"kind": "random"}, "'random' needs a seed: add curriculum.seed"),
        ({"kind": "easy-to-hard"}, "curriculum.difficulty misses task 'copy'"),
        ({"kind": "bwt-guided"}, "needs curriculum.forgetting"),
        (
            {"kind": "bwt-guided", "forgetting": {"copy": {"inc": 1.0}}},
            "forgetting misses copy → compare",
        ),
        ({"kind": "rarity-first", "stages": 6}, "stages is 6 but it orders 5 tasks"),
        ({"kind": "open-first", "stages": 3}, "has two stages"),
    ],
)
def test_missing_facts_are_one_line_errors_at_resolve(
    curriculum: dict[str, Any], message: str
) -> None:
    with pytest.raises(RaremixError, match=message) as err:
        plan(**curriculum)
    assert str(err.value).startswith("mixture.curriculum: ") and "\n" not in str(err.value)


def test_task_facts_default_kinds_from_the_task_registry() -> None:
    tf = task_facts(NAMES, np.full(5, 0.2), CurriculumSpec(kind="open-first"))
    assert tf.kinds == {
        "copy": "structured",
        "inc": "structured",
        "compare": "structured",
        "permute": "open",
        "bigger": "open",
    }


def curriculum_config(**curriculum: Any) -> dict[str, Any]:
    cfg = tiny_config(steps=40, eval_every=20, checkpoint_every=20)
    cfg["tasks"] = {
        "copy": {"complexity": 3},
        "successor": {"complexity": 2},
        "bigger": {"complexity": 2},
    }
    cfg["mixture"]["sources"].append({"name": "bigger", "size": 500})
    cfg["mixture"]["curriculum"] = curriculum
    return cfg


@pytest.mark.slow
def test_loss_ranked_run_measures_its_own_model_at_the_phase_start(tmp_path: Path) -> None:
    config = curriculum_config(
        kind="rarity-first", by="loss", base_fraction=0.5, base_tasks=["copy"], focus=0.8
    )
    facts_ = run_ordering(config, tmp_path / "run")
    measured = json.loads((tmp_path / "run" / MEASURED_FILE).read_text())["losses"]
    assert set(measured) == {"copy", "successor", "bigger"} and facts_["base_end"] == 20
    # the full run's own model at step 20 has exactly these losses
    full = load_config(
        data={
            **config,
            "mixture": {
                **config["mixture"],
                "curriculum": {**config["mixture"]["curriculum"], "losses": measured},
            },
        }
    )
    probe = MeasureAt(20, losses=True, forgetting=False)
    train(full, tmp_path / "again", callbacks=[probe])
    assert probe.result is not None and probe.result["losses"] == measured
    ranked = sorted(measured, key=lambda t: -measured[t])
    assert facts_["order"] == " | ".join(ranked)
    # the base task (trained for 20 steps) is the most familiar: ranked last
    assert ranked[-1] == "copy"
    assert facts_["steps"] == 40


@pytest.mark.slow
def test_bwt_guided_run_measures_a_forgetting_matrix(tmp_path: Path) -> None:
    config = curriculum_config(kind="bwt-guided", base_fraction=0.25, focus=0.5)
    facts_ = run_ordering(config, tmp_path)
    f = json.loads((tmp_path / MEASURED_FILE).read_text())["forgetting"]
    assert set(f) == {"copy", "successor", "bigger"} and all(len(row) == 2 for row in f.values())
    names = ["copy", "successor", "bigger"]
    m = np.array([[0.0 if a == b else f[a][b] for b in names] for a in names])
    assert facts_["order"] == " | ".join(names[i] for i in min_forgetting_order(m))
    assert np.isfinite(m).all() and np.abs(m).sum() > 0
