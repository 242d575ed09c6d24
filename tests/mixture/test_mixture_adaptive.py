"""Adaptive mixing rules: bounds, resumable state, and each rule's defining behaviour."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.mixture.adaptive import (
    RULES,
    AdaptiveConfig,
    allreduce_signals,
    bounded,
    make_rule,
)

NAMES = ("copy", "inc", "sort", "compare")
PRIOR = np.array([0.55, 0.25, 0.17, 0.03])


def _signals(rng: np.random.Generator, k: int = 4) -> dict[str, np.ndarray]:
    return {
        "loss": rng.uniform(0, 3, k),
        "ref_loss": rng.uniform(0, 1, k),
        "acc": rng.uniform(0, 1, k),
        "interference": rng.uniform(-0.5, 0.5, k),
        "harm": rng.uniform(-0.01, 0.01, k),
        "steps": np.array(50.0),
        "step": np.array(100.0),
    }


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_respects_the_floor_sums_to_one_and_never_goes_one_hot(name: str) -> None:
    rule = make_rule(name, floor=0.02, smoothing=0.0)
    state = rule.init(PRIOR, NAMES, ["compare"])
    rng = np.random.default_rng(0)
    for t in range(200):
        sig = _signals(rng)
        sig["loss"][0] = 50.0  # one task always looks far worse: the rule pushes towards it
        sig["step"] = np.array(50.0 * (t + 1))
        w, state = rule.update(sig, state)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        assert w.min() >= 0.02 - 1e-12 and w.max() < 1 - 3 * 0.02 + 1e-12


@pytest.mark.parametrize("name", sorted(RULES))
def test_state_round_trips_through_json_and_resumes_exactly(name: str) -> None:
    rule = make_rule(name)
    rng = np.random.default_rng(1)
    sigs = [_signals(rng) for _ in range(12)]
    state = rule.init(PRIOR, NAMES, ["compare"])
    straight = []
    for s in sigs:
        w, state = rule.update(s, state)
        straight.append(w)
    state = rule.init(PRIOR, NAMES, ["compare"])
    resumed = []
    for i, s in enumerate(sigs):
        if i == 5:  # a checkpoint: the state goes to JSON text and back
            state = json.loads(json.dumps(state))
        w, state = rule.update(s, state)
        resumed.append(w)
    assert all(np.array_equal(a, b) for a, b in zip(straight, resumed, strict=True))


def test_update_does_not_modify_the_state_it_is_given() -> None:
    rule = make_rule("protect")
    state = rule.init(PRIOR, NAMES, ["compare"])
    before = json.dumps(state)
    rule.update(_signals(np.random.default_rng(2)), state)
    assert json.dumps(state) == before


def test_bounded_floor_is_exact_and_smoothing_pulls_to_the_prior() -> None:
    w = bounded(np.array([1.0, 0, 0, 0]), PRIOR, floor=0.05, smoothing=0.0)
    assert w.min() == pytest.approx(0.05) and w.sum() == pytest.approx(1.0)
    w = bounded(np.array([1.0, 0, 0, 0]), PRIOR, floor=0.0, smoothing=1.0)
    assert np.allclose(w, PRIOR)
    with pytest.raises(RaremixError, match=r"below 0\.25"):
        bounded(PRIOR, PRIOR, floor=0.3, smoothing=0.0)


def test_doremi_raises_the_task_with_the_largest_excess_loss() -> None:
    rule = make_rule("doremi", eta=1.0, floor=0.0, smoothing=0.0)
    state = rule.init(PRIOR, NAMES, [])
    loss = np.array([0.5, 0.6, 0.4, 2.0])
    ref = np.array([0.5, 0.4, 0.5, 0.5])  # excess: 0, 0.2, 0 (clipped), 1.5
    w, state = rule.update({"loss": loss, "ref_loss": ref}, state)
    gain = w / PRIOR
    assert np.argmax(gain) == 3 and gain[3] > gain[1] > gain[0] == pytest.approx(gain[2])
    for _ in range(10):
        w, state = rule.update({"loss": loss, "ref_loss": ref}, state)
    assert np.argmax(w) == 3  # the rare task with the largest excess now has the most weight


def test_exp3_has_sublinear_regret_on_a_toy_bandit() -> None:
    means = np.array([0.2, 0.3, 0.4, 0.5, 0.8])
    k, rounds = len(means), 4000
    rule = make_rule("exp3", floor=0.0, smoothing=0.0, feedback="bandit", start="uniform")
    state = rule.init(np.full(k, 1 / k), [f"arm{i}" for i in range(k)], [])
    rng = np.random.default_rng(0)
    expected = 0.0
    p = np.asarray(state["weights"])
    for t in range(1, rounds + 1):
        arm = rng.choice(k, p=p)
        reward = np.full(k, np.nan)
        reward[arm] = float(rng.random() < means[arm])
        # rewards are used as "loss" (EXP3 maximises what it is given)
        p, state = rule.update({"loss": reward, "step": np.array(float(t))}, state)
        expected += float(p @ means)
    regret = rounds * means.max() - expected
    uniform_regret = rounds * (means.max() - means.mean())
    # EXP3's bound is O(sqrt(T K ln K)); here well under it and far under uniform play
    assert regret < 2.63 * math.sqrt(rounds * k * math.log(k))
    assert regret < 0.35 * uniform_regret
    assert p[-1] > 0.6


def test_exp3_with_full_feedback_follows_the_highest_loss() -> None:
    rule = make_rule("exp3", floor=0.01, smoothing=0.0)
    state = rule.init(PRIOR, NAMES, [])
    loss = np.array([0.05, 0.05, 0.05, 0.7])
    for t in range(1, 31):
        w, state = rule.update(
            {"loss": loss, "steps": np.array(50.0), "step": np.array(50.0 * t)}, state
        )
    assert np.argmax(w) == 3 and w[3] > 0.5


def test_exp3_progress_reward_follows_the_falling_loss() -> None:
    rule = make_rule("exp3", reward="progress", floor=0.01, smoothing=0.0, start="uniform")
    state = rule.init(PRIOR, NAMES, [])
    for t in range(1, 31):
        loss = np.array([1.0, 1.0, 1.0, 2.0 - 0.05 * t])  # only the last task is improving
        w, state = rule.update(
            {"loss": loss, "steps": np.array(50.0), "step": np.array(50.0 * t)}, state
        )
    assert np.argmax(w) == 3


def test_protect_raises_the_rare_task_then_lowers_it_once_retained() -> None:
    rule = make_rule("protect", floor=0.0, smoothing=0.0, up=1.5, down=1.1, max_boost=10)
    state = rule.init(PRIOR, NAMES, ["compare"])
    acc = np.array([1.0, 1.0, 1.0, 0.5])
    cos = np.array([np.nan, np.nan, np.nan, 0.1])
    shares = []
    for _ in range(8):  # not learned yet: the boost climbs to its cap
        w, state = rule.update({"acc": acc, "interference": cos}, state)
        shares.append(w[3])
    assert shares == sorted(shares) and state["boost"][0] == pytest.approx(10.0)
    assert w[3] == pytest.approx(10 * 0.03, rel=1e-6)
    acc[3] = 0.95  # learned: the boost decays back toward the prior share
    for _ in range(30):
        w, state = rule.update({"acc": acc, "interference": cos}, state)
    assert 0.03 <= w[3] < 0.06 and state["boost"][0] < 2
    # the other tasks keep their proportions throughout
    assert w[0] / w[1] == pytest.approx(PRIOR[0] / PRIOR[1])
    before = state["boost"][0]
    acc[3] = 0.8  # forgetting (peak 0.95 → 0.8): raised again
    w, state = rule.update({"acc": acc, "interference": cos}, state)
    assert state["boost"][0] == pytest.approx(before * 1.5)
    acc[3] = 0.95  # recovered (peak 0.95), but a conflicting gradient still counts as a risk
    cos[3] = -0.3
    w, state = rule.update({"acc": acc, "interference": cos}, state)
    assert state["boost"][0] == pytest.approx(before * 1.5 * 1.5)


def test_ledger_rule_boosts_only_while_common_updates_hurt() -> None:
    rule = make_rule("ledger", floor=0.0, smoothing=0.0, up=2.0, down=1.25, max_boost=8)
    state = rule.init(PRIOR, NAMES, ["compare"])
    harm = np.array([np.nan, np.nan, np.nan, -0.02])  # positive transfer: common steps help
    for _ in range(5):  # unlearned, but not hurt: the mix stays the prior (protect would boost)
        w, state = rule.update({"harm": harm}, state)
    assert w == pytest.approx(PRIOR) and state["boost"] == [1.0]
    harm[3] = 0.01  # the common tasks' step now raises compare's loss: boosted, to the cap
    for _ in range(4):
        w, state = rule.update({"harm": harm}, state)
    assert state["boost"][0] == pytest.approx(8.0) and w[3] == pytest.approx(8 * 0.03)
    assert w[0] / w[1] == pytest.approx(PRIOR[0] / PRIOR[1])
    harm[3] = 0.0  # no longer hurt (not above the threshold 0): decays
    w, state = rule.update({"harm": harm}, state)
    assert state["boost"][0] == pytest.approx(8 / 1.25) and state["risk"] == [False]


def test_config_errors_are_one_line() -> None:
    from raremix.configbase import load

    with pytest.raises(RaremixError, match="did you mean 'doremi'"):
        load(AdaptiveConfig, {"rule": "doremy"}).build()
    with pytest.raises(RaremixError, match=r"unknown key.*'tagret'.*did you mean 'target'"):
        load(AdaptiveConfig, {"rule": "protect", "params": {"tagret": 0.9}}).build()
    with pytest.raises(RaremixError, match=r"adaptive\.floor"):
        load(AdaptiveConfig, {"rule": "exp3", "params": {"floor": 0.1}}).build()
    with pytest.raises(RaremixError, match="unknown task to protect 'comapre'"):
        make_rule("protect", tasks=["comapre"]).init(PRIOR, NAMES, [])


def test_allreduce_without_a_process_group_returns_the_signals() -> None:
    out = allreduce_signals({"loss": np.array([1.0, 2.0]), "step": np.array(3.0)})
    assert out["loss"].tolist() == [1.0, 2.0] and float(out["step"]) == 3.0


def _rank(rank: int, world: int, port: int, path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        out = allreduce_signals({"loss": np.array([1.0, 2.0]) * (rank + 1), "step": np.array(10.0)})
        if rank == 0:
            with open(path, "w") as f:
                json.dump({k: v.tolist() for k, v in out.items()}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_allreduce_averages_over_two_gloo_ranks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "out.json"
    mp.spawn(_rank, args=(2, port, str(path)), nprocs=2, join=True)
    out = json.loads(path.read_text())
    assert out == {"loss": [1.5, 3.0], "step": 10.0}
