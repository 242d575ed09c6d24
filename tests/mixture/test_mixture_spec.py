"""Mixture spec: YAML/Python configs, semantics of weight|repeat|count, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.mixture import MixtureConfig, build_sampler, resolve
from raremix.mixture.resolve import NO_CAP

SHORTHAND = """
mixture:
  strategy: upweight
  params: {factor: 10, tasks: [modadd]}
  mode: stratified
  sources:
    - {name: copy, size: 100000}
    - {name: modadd, size: 2000, exhaustion: {max_epochs: 2}}
    - {name: sort, size: 8000, exhaustion: stop}
"""


def src(*specs: dict) -> dict:
    return {"sources": list(specs)}


def test_yaml_shorthand_loads_and_resolves() -> None:
    mix = load(MixtureConfig, yaml.safe_load(SHORTHAND)["mixture"], "config.mixture")
    plan = resolve(mix)
    natural = np.array([100_000, 2_000, 8_000]) / 110_000
    w = plan.schedule.weights_at(0)
    assert w[1] == pytest.approx(10 * natural[1])
    assert w.sum() == pytest.approx(1.0)
    assert plan.caps.tolist() == [NO_CAP, 4000, 8000]
    assert plan.mode == "stratified"


def test_weights_are_shares() -> None:
    plan = resolve(
        load(
            MixtureConfig,
            src({"name": "a", "size": 10, "weight": 3}, {"name": "b", "size": 99, "weight": 1}),
        )
    )
    assert plan.schedule.weights_at(0).tolist() == [0.75, 0.25]
    assert plan.epoch_length is None


def test_repeat_and_count_are_examples_per_mixture_epoch() -> None:
    mix = load(
        MixtureConfig,
        src({"name": "a", "size": 100, "repeat": 2}, {"name": "b", "size": 1000, "count": 50}),
    )
    plan = resolve(mix)
    assert plan.epoch_length == 250
    assert plan.schedule.weights_at(0).tolist() == pytest.approx([200 / 250, 50 / 250])


def test_sizes_can_come_from_the_caller() -> None:
    mix = load(MixtureConfig, src({"name": "a"}, {"name": "b"}))
    sampler = build_sampler(mix, sizes={"a": 30, "b": 10}, seed=0, batch_size=4)
    assert sampler.sizes.tolist() == [30, 10]
    assert sampler.weights_at(0).tolist() == [0.75, 0.25]


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (
            src({"name": "a", "weight": -1}),
            "'sources.0.weight': weight must be a finite number >= 0: use 0",
        ),
        (
            src({"name": "a", "weight": 0}, {"name": "b", "weight": 0}),
            "weights are all zero: give at least one",
        ),
        (
            src({"name": "a", "weight": 1, "repeat": 2}),
            "source 'a' gives both weight and repeat: keep one",
        ),
        (
            src({"name": "a", "weight": 1}, {"name": "b"}),
            "source 'b' gives no weight|repeat|count while others do",
        ),
        (
            src({"name": "a", "weight": 1}, {"name": "b", "count": 3}),
            "use one kind for every source",
        ),
        (src({"name": "a"}, {"name": "a"}), "source name 'a' appears twice"),
        (
            src({"name": "a", "exhaustion": "reshufle"}),
            "unknown exhaustion policy 'reshufle': did you mean 'reshuffle'?",
        ),
        (src({"name": "a", "wieght": 1}), "unknown key 'sources.0.wieght': did you mean 'weight'?"),
        (
            src({"name": "a", "exhaustion": {"max_epoch": 2}}),
            "exhaustion must be reshuffle, stop or {max_epochs: N}",
        ),
        (
            {**src({"name": "a"}), "strategy": "natral"},
            "unknown strategy 'natral': did you mean 'natural'?",
        ),
        (
            {**src({"name": "a", "weight": 1}), "strategy": "uniform"},
            "choose one way to weight them",
        ),
        (
            {**src({"name": "a"}), "strategy": "temperature"},
            "strategy 'temperature' needs params.tau: add it",
        ),
        (
            {**src({"name": "a"}), "strategy": "temperature", "params": {"tua": 2}},
            "did you mean 'tau'?",
        ),
        (
            {**src({"name": "a"}), "strategy": "temperature", "params": {"tau": -1}},
            "params.tau: Input should be greater than 0",
        ),
        (
            {
                **src({"name": "copy"}),
                "strategy": "upweight",
                "params": {"factor": 2, "tasks": ["modad"]},
            },
            "params.tasks: unknown source 'modad'",
        ),
        ({**src({"name": "a"}), "params": {"tau": 2}}, "params given without a strategy"),
        ({**src({"name": "a"}), "mode": "strat"}, "'mode': Input should be 'iid' or 'stratified'"),
        (
            {
                **src({"name": "a"}, {"name": "b"}),
                "schedule": {"phases": [{"start": 0, "weights": {"a": 1, "c": 1}}]},
            },
            "phases[0].weights: unknown source 'c'",
        ),
        (
            {
                **src({"name": "a"}, {"name": "b"}),
                "schedule": {"phases": [{"start": 0, "weights": {"a": 1}}]},
            },
            "phases[0].weights misses 'b': list every source",
        ),
        (
            {**src({"name": "a"}), "schedule": {"phases": [{"start": 0}, {"start": 0}]}},
            "phase starts must increase",
        ),
        (
            {**src({"name": "a"}), "schedule": {"phases": [{"start": 0.5}]}},
            "the first phase must start at 0",
        ),
        (
            {**src({"name": "a"}), "schedule": {"phases": [{"start": 0}, {"start": 1.5}]}},
            "use unit: steps",
        ),
        (
            {**src({"name": "a"}), "schedule": {"phases": [{"start": 0, "anneal": "linear"}]}},
            "the first phase has nothing to anneal from",
        ),
        (
            {
                **src({"name": "a"}),
                "schedule": {"phases": [{"start": 0}], "replay": {"tasks": ["b"], "fraction": 0.1}},
            },
            "replay.tasks: unknown source 'b'",
        ),
    ],
)
def test_bad_configs_fail_with_one_line_naming_the_fix(data: dict, expect: str) -> None:
    with pytest.raises(RaremixError) as err:
        load(MixtureConfig, data, "cfg")
    msg = str(err.value)
    assert expect in msg
    assert "\n" not in msg and msg.startswith("cfg")


@pytest.mark.parametrize(
    ("data", "sizes", "expect"),
    [
        (src({"name": "a"}), None, "source 'a' has no size: add 'size: N'"),
        (src({"name": "a", "size": 5}), {"a": 6}, "has size 5 in the config but 6 was passed"),
        (src({"name": "a", "size": 5}), {"b": 6}, "sizes: unknown source 'b'"),
        (
            {**src({"name": "a", "size": 5}), "strategy": "unimax"},
            None,
            "unimax needs the run's example budget",
        ),
        (
            {
                **src({"name": "a", "size": 5}, {"name": "b", "size": 5}),
                "strategy": "upweight",
                "params": {"tasks": ["a"], "floor": 0.5, "factor": 9},
            },
            None,
            "the named tasks would take 4.5 of the mix",
        ),
        (
            {
                **src({"name": "a", "size": 5}),
                "schedule": {"phases": [{"start": 0}, {"start": 0.5}]},
            },
            None,
            "phase starts are fractions of training: pass total_steps",
        ),
    ],
)
def test_resolve_errors(data: dict, sizes: dict | None, expect: str) -> None:
    mix = load(MixtureConfig, data)
    with pytest.raises(RaremixError) as err:
        build_sampler(mix, sizes, seed=0, batch_size=4)
    assert expect in str(err.value) and "\n" not in str(err.value)


def test_sampler_argument_errors() -> None:
    mix = src({"name": "a", "size": 5})
    with pytest.raises(RaremixError, match="make it a multiple of the world size"):
        build_sampler(mix, seed=0, batch_size=10, world_size=3)
    with pytest.raises(RaremixError, match="need 0 <= rank < world_size"):
        build_sampler(mix, seed=0, batch_size=10, rank=2, world_size=2)
