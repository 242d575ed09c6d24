"""Spacing guarantees: every k-th batch exactly, or once in every window; at the declared
share; across resumes, shards, modes and weight changes; impossible spacings refused."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.mixture import MixtureSampler, build_sampler
from raremix.mixture.spacing import Spacing, spaced_counts
from tiny_configs import tiny_config

STEPS = 120


@st.composite
def spaced_mixtures(draw: Any) -> tuple[dict, int]:
    """A mixture with one or two spaced rare sources whose spacing its share can fund."""
    batch = draw(st.sampled_from([8, 16, 32, 64]))
    mode = draw(st.sampled_from(["iid", "stratified"]))
    sources = [
        {"name": "common", "size": draw(st.integers(50, 500)), "weight": 1.0},
        {
            "name": "other",
            "size": draw(st.integers(5, 200)),
            "weight": draw(st.sampled_from([0.0, 0.3, 1.0])),
        },
    ]
    for i in range(draw(st.integers(1, 2))):
        share = draw(st.sampled_from([0.005, 0.01, 0.03, 0.1]))
        per_batch = share * batch
        lo = math.ceil(1 / per_batch - 1e-9)
        key = draw(st.sampled_from(["every", "window"]))
        # every: k batches' worth (plus rounding) must fit in half a batch, room for a second
        hi = min(STEPS, math.floor((batch / 2 - 1) / per_batch)) if key == "every" else STEPS
        if lo > hi:
            continue
        gap = draw(st.integers(lo, min(hi, lo + 40)))
        # weights are relative: give the spaced source `share` of the final mix
        sources.append(
            {"name": f"rare{i}", "size": draw(st.integers(3, 60)), "_share": share, key: gap}
        )
    rest = sum(s["weight"] for s in sources if "weight" in s)
    taken = sum(s.get("_share", 0.0) for s in sources)
    for s in sources:
        if "_share" in s:
            s["weight"] = s.pop("_share") * rest / (1 - taken)
    return {"mode": mode, "sources": sources}, batch


def appearances(sampler: MixtureSampler, steps: int) -> tuple[np.ndarray, list]:
    """(steps × sources) examples of each source per global batch, and the raw batches."""
    counts, batches = [], []
    for _ in range(steps):
        src, idx = sampler.next_batch()
        counts.append(np.bincount(src, minlength=len(sampler.names)))
        batches.append((src.tolist(), idx.tolist()))
    return np.array(counts), batches


def assert_spacing_holds(mix: dict, counts: np.ndarray, start: int = 0) -> None:
    """every: in exactly the batches k−1, 2k−1, …; window: in each w consecutive batches."""
    steps = np.arange(start, start + len(counts))
    for j, s in enumerate(mix["sources"]):
        seen = counts[:, j] > 0
        if "every" in s:
            assert np.array_equal(seen, (steps + 1) % s["every"] == 0), s
        if "window" in s:
            w = s["window"]
            gaps = np.diff(np.concatenate([[-1], steps[seen] - start, [len(counts)]]))
            assert gaps.max() <= w, (s, gaps.max())


@given(spaced_mixtures(), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_spacing_holds_at_the_declared_share(case: tuple[dict, int], seed: int) -> None:
    mix, batch = case
    sampler = build_sampler(mix, seed=seed, batch_size=batch, total_steps=STEPS)
    counts, _ = appearances(sampler, STEPS)
    assert (counts.sum(axis=1) == batch).all()  # every batch is full
    assert_spacing_holds(mix, counts)
    w = np.array([s["weight"] for s in mix["sources"]])
    target = batch * STEPS * w / w.sum()
    for j, s in enumerate(mix["sources"]):
        if "every" in s or "window" in s:
            # exact long-run frequency: the owed count stays within ~1 example (every: up to
            # the examples owed since the last appearance, which come at the next one)
            slack = 1.5 + (batch * w[j] / w.sum() * s["every"] if "every" in s else 0)
            assert abs(counts[:, j].sum() - target[j]) <= slack, (s, counts[:, j].sum(), target[j])


@given(spaced_mixtures(), st.lists(st.integers(1, STEPS - 1), min_size=1, max_size=3))
@settings(max_examples=30, deadline=None)
def test_resume_mid_run_gives_identical_batches(case: tuple[dict, int], cuts: list[int]) -> None:
    mix, batch = case
    whole = appearances(build_sampler(mix, seed=5, batch_size=batch, total_steps=STEPS), STEPS)[1]
    sampler = build_sampler(mix, seed=5, batch_size=batch, total_steps=STEPS)
    resumed = []
    for step in range(STEPS):
        if step in cuts:  # through JSON, as a checkpoint stores it
            state = json.loads(json.dumps(sampler.state_dict()))
            sampler = build_sampler(mix, seed=5, batch_size=batch, total_steps=STEPS)
            sampler.load_state_dict(state)
        resumed += appearances(sampler, 1)[1]
    assert resumed == whole


@given(spaced_mixtures(), st.sampled_from([2, 4]))
@settings(max_examples=20, deadline=None)
def test_shards_union_to_the_single_process_stream(case: tuple[dict, int], world: int) -> None:
    mix, batch = case
    if batch % world:
        return
    whole = appearances(build_sampler(mix, seed=2, batch_size=batch, total_steps=STEPS), 60)[1]
    ranks = [
        appearances(
            build_sampler(
                mix, seed=2, batch_size=batch, total_steps=STEPS, rank=r, world_size=world
            ),
            60,
        )[1]
        for r in range(world)
    ]
    for step in range(60):
        joined = [x for r in range(world) for x in ranks[r][step][0]]
        joined_i = [x for r in range(world) for x in ranks[r][step][1]]
        assert (joined, joined_i) == whole[step]


@pytest.mark.parametrize("mode", ["iid", "stratified"])
def test_spacing_holds_through_a_schedule_and_weight_overrides(mode: str) -> None:
    """A phase change and adaptive-style overrides move the share; the spacing still holds,
    and the count follows the cumulative target of the weights actually in force."""
    mix = {
        "mode": mode,
        "sources": [
            {"name": "common", "size": 1000, "weight": 0.97},
            {"name": "spaced", "size": 50, "weight": 0.02, "every": 8},
            {"name": "windowed", "size": 50, "weight": 0.01, "window": 5},
        ],
        "schedule": {
            "unit": "steps",
            "phases": [
                {"start": 0},
                {
                    "start": 40,
                    "weights": {"common": 0.9, "spaced": 0.05, "windowed": 0.05},
                    "anneal": "linear",
                },
            ],
        },
    }
    sampler = build_sampler(mix, seed=1, batch_size=32, total_steps=200)
    first, _ = appearances(sampler, 100)
    sampler.set_weights({"common": 0.8, "spaced": 0.1, "windowed": 0.1})
    second, _ = appearances(sampler, 100)
    counts = np.vstack([first, second])
    assert_spacing_holds(mix, counts)
    for j in (1, 2):
        assert abs(counts[:, j].sum() - sampler.targets[j]) <= 1.5 + (0.1 * 32 * 8 if j == 1 else 0)


def test_a_source_switched_off_has_no_deadline_and_resumes_its_spacing() -> None:
    mix = {
        "sources": [
            {"name": "common", "size": 1000, "weight": 0.9},
            {"name": "rare", "size": 50, "weight": 0.1, "window": 3},
        ],
        "schedule": {
            "unit": "steps",
            "phases": [
                {"start": 0},
                {"start": 30, "weights": {"common": 1, "rare": 0}},
                {"start": 60, "weights": {"common": 0.9, "rare": 0.1}},
            ],
        },
    }
    counts, _ = appearances(build_sampler(mix, seed=0, batch_size=16, total_steps=90), 90)
    assert counts[30:60, 1].sum() == 0  # off means off: no forced appearance
    assert_spacing_holds({"sources": [{}, {"window": 3}]}, counts[:30])
    assert_spacing_holds({"sources": [{}, {"window": 3}]}, counts[60:], start=60)


def test_clumped_spaced_and_iid_exposures_have_equal_frequency() -> None:
    """The study's three exposures of one rare task: same examples, different gaps."""
    base = {"name": "rare", "size": 200, "weight": 1 / 64}
    arms = {"iid": {}, "spaced": {"every": 4}, "clumped": {"every": 64}}
    got = {}
    for arm, spacing in arms.items():
        mix = {
            "sources": [{"name": "common", "size": 5000, "weight": 63 / 64}, {**base, **spacing}]
        }
        counts, _ = appearances(build_sampler(mix, seed=3, batch_size=64, total_steps=640), 640)
        rare = counts[:, 1]
        got[arm] = (int(rare.sum()), int((rare > 0).sum()), int(rare.max()))
    assert got["spaced"] == (640, 160, 4) and got["clumped"] == (640, 10, 64)
    assert abs(got["iid"][0] - 640) < 4 * math.sqrt(640)  # binomial: only in expectation
    assert got["iid"][1] > 160  # iid spreads one or two at a time over most batches


def test_spaced_counts_is_pure_and_rounds_half_up() -> None:
    spacing = Spacing(np.array([0, 3]), np.array([0, 0]))
    owed, last = np.zeros(2), np.full(2, -1)
    shares, room = np.array([0.9, 0.1]), np.array([10**9, 10**9])
    got = []
    for step in range(6):
        n, owed2, last2 = spaced_counts(step, shares, room, owed, last, spacing, 5, np.zeros(2))
        assert owed.tolist() == ([0.0, 0.0] if step == 0 else owed.tolist())  # not modified
        owed, last = owed2, last2
        got.append(int(n[1]))
    assert got == [0, 0, 2, 0, 0, 1]  # 1.5 owed → 2 (owed −0.5), then 1.0 → 1


REFUSALS = {
    "every shorter than the share": ({"weight": 0.005, "every": 2}, "use every >= 7"),
    "window shorter than the share": ({"weight": 0.005, "window": 3}, "use window >= 7"),
    "every overflows a batch": ({"weight": 0.1, "every": 20}, "use every <= 10"),
    "window longer than the run": ({"weight": 0.1, "window": 100}, "use window <= 60"),
    "every and window": ({"weight": 0.1, "every": 2, "window": 3}, "keep one"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_impossible_spacing_is_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rare, needle = REFUSALS[case]
    cfg = tiny_config()  # 60 steps, batch 32
    cfg["mixture"] = {
        "sources": [
            {"name": "copy", "size": 9000, "weight": 1 - rare["weight"]},
            {"name": "successor", "size": 1000, **rare},
        ]
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = cli(capsys, monkeypatch, "train", str(path), "--out", str(tmp_path / "run"))
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], out + err
    assert "Traceback" not in out + err and not (tmp_path / "run").exists()


def test_every_source_spaced_is_refused() -> None:
    mix = {
        "sources": [
            {"name": "a", "size": 9, "weight": 1, "every": 1},
            {"name": "b", "size": 9, "weight": 1, "window": 2},
        ]
    }
    with pytest.raises(RaremixError, match="leave at least one without"):
        build_sampler(mix, seed=0, batch_size=8)


def test_unspaced_configs_keep_their_hash_and_stream() -> None:
    from raremix.config import load_config

    cfg = load_config(data=tiny_config())
    dumped = cfg.model_dump(mode="json")["mixture"]["sources"][0]
    assert "every" not in dumped and "window" not in dumped
    state = build_sampler(cfg.mixture, seed=0, batch_size=8).state_dict()
    assert "spacing" not in state  # an unspaced sampler's checkpoint is as before


def test_per_source_counts_never_repeat_within_an_epoch() -> None:
    mix = {
        "mode": "stratified",
        "sources": [
            {"name": "c", "size": 37, "weight": 0.9},
            {"name": "r", "size": 11, "weight": 0.1, "every": 5},
        ],
    }
    _, batches = appearances(build_sampler(mix, seed=9, batch_size=16, total_steps=100), 100)
    seq: dict[int, list[int]] = defaultdict(list)
    for src, idx in batches:
        for s, i in zip(src, idx, strict=True):
            seq[s].append(i)
    for s, n in ((0, 37), (1, 11)):
        for a in range(0, len(seq[s]) - n + 1, n):
            assert sorted(seq[s][a : a + n]) == list(range(n))
