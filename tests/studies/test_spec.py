"""Study specs: axes expand to runs with labels, deep merges and config-hash ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from raremix.config import TrainConfig
from raremix.configbase import load, packaged_configs
from raremix.errors import RaremixError
from raremix.mixture import resolve
from raremix.studies.registry import study_record
from raremix.studies.spec import StudySpec, expand, load_spec, quick_variant, run_id_of

BASE = {
    "seed": 0,
    "steps": 100,
    "model": {"size": "xs", "n_layer": None},
    "mixture": {"strategy": "natural", "params": {"temperature": 1.0}},
}


def spec(axes: dict, **extra: object) -> StudySpec:
    return load(StudySpec, {"name": "toy", "base": BASE, "axes": axes, **extra}, "study.yaml")


def test_cartesian_product_in_axis_order_with_labels() -> None:
    runs = expand(spec({"model.size": ["xs", "s", "m"], "seed": [0, 1]}))
    assert len(runs) == 6
    assert [r.labels for r in runs[:3]] == [
        {"model.size": "xs", "seed": "0"},
        {"model.size": "xs", "seed": "1"},
        {"model.size": "s", "seed": "0"},
    ]
    assert runs[5].config["model"] == {"size": "m", "n_layer": None} and runs[5].config["seed"] == 1
    assert BASE["model"]["size"] == "xs"  # the base is never mutated


def test_mapping_axis_deep_merges_into_its_section_or_the_root() -> None:
    mixture = {
        "natural": {"strategy": "natural"},
        "up": {"strategy": "upweight", "params": {"factor": 10}},
    }
    arm = {"short": {"steps": 50}, "big": {"steps": 200, "model": {"size": "l"}}}
    runs = expand(spec({"mixture": mixture, "arm": arm}))
    by = {(r.labels["mixture"], r.labels["arm"]): r.config for r in runs}
    assert by["up", "short"]["mixture"] == {
        "strategy": "upweight",
        "params": {"temperature": 1.0, "factor": 10},
    }
    assert (
        by["natural", "big"]["model"] == {"size": "l", "n_layer": None}
        and by["natural", "big"]["steps"] == 200
    )
    labelled = expand(spec({"mixture.params.temperature": {"hot": 3.0, "cold": 0.5}}))
    assert [(r.labels, r.config["mixture"]["params"]["temperature"]) for r in labelled] == [
        ({"mixture.params.temperature": "hot"}, 3.0),
        ({"mixture.params.temperature": "cold"}, 0.5),
    ]


def test_run_ids_are_deterministic_config_hashes() -> None:
    a = expand(spec({"seed": [0, 1, 2]}))
    b = expand(spec({"seed": [2, 1, 0], "steps": [100]}))  # other spec, same configs
    assert [r.run_id for r in a] == [r.run_id for r in expand(spec({"seed": [0, 1, 2]}))]
    assert {r.run_id for r in a} == {r.run_id for r in b}
    assert len({r.run_id for r in a}) == 3 and all(len(r.run_id) == 12 for r in a)
    assert a[0].run_id == run_id_of({**BASE})
    assert (
        expand(spec({"seed": [0]}))[0].run_id
        != expand(spec({"seed": [0]}, base={**BASE, "steps": 101}))[0].run_id
    )


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            {"model.sise": ["s"]},
            "axis 'model.sise' is not a key of the base config: did you mean 'model.size'?",
        ),
        ({"mixtrue": {"a": {"strategy": "x"}}}, "did you mean 'mixture'?"),
        ({"seed": [1, 1]}, "repeats the value '1'"),
        ({"seed": [0], "steps": {"a": 100, "b": 100}}, "identical configs"),
    ],
)
def test_bad_axes_fail_at_expand_with_one_line(axes: dict, message: str) -> None:
    with pytest.raises(RaremixError, match=r"^study 'toy': ") as err:
        expand(spec(axes))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"axes": {"seed": 3}}, "axis 'seed' must be a list of values or a mapping"),
        ({"axes": {"seed": []}}, "axis 'seed' has no values"),
        ({"axes": {"status": [1]}}, "clashes with the run-table column 'status'"),
        ({"axes": {"a.b": [1], "a_b": [2]}}, "share the column 'a_b'"),
        ({"axis": {}}, "unknown key 'axis': did you mean 'axes'?"),
        ({"name": "bad name"}, "'name': String should match pattern"),
        ({"threads_per_run": 0}, "'threads_per_run'"),
    ],
)
def test_bad_spec_is_one_line(data: dict, message: str) -> None:
    with pytest.raises(RaremixError) as err:
        load(StudySpec, {"name": "toy", "base": BASE, **data}, "study.yaml")
    assert message in str(err.value) and str(err.value).startswith("study.yaml: ")


def test_load_spec_reads_a_base_next_to_the_study(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text("seed: 0\nmodel: {size: xs}\n")
    (tmp_path / "study.yaml").write_text(
        "name: s\nbase: configs/base.yaml\naxes:\n  model.size: [xs, s]\n  seed: [0, 1]\n"
    )
    runs = expand(load_spec(tmp_path / "study.yaml"))
    assert len(runs) == 4 and runs[-1].config == {"seed": 1, "model": {"size": "s"}}
    (tmp_path / "bad.yaml").write_text("name: s\nbase: missing.yaml\n")
    with pytest.raises(RaremixError, match=r"missing\.yaml: no such file"):
        load_spec(tmp_path / "bad.yaml")


def test_quick_variant_shrinks_base_and_axes() -> None:
    full = spec(
        {"model.size": ["xs", "s", "m"], "seed": [0, 1, 2]},
        quick={"base": {"steps": 5}, "axes": {"seed": [0]}},
    )
    runs = expand(quick_variant(full))
    assert (
        len(runs) == 3
        and {r.config["steps"] for r in runs} == {5}
        and {r.labels["seed"] for r in runs} == {"0"}
    )
    with pytest.raises(RaremixError, match="no 'quick' section"):
        quick_variant(spec({}))
    with pytest.raises(RaremixError, match=r"quick\.base sets 'step', .*did you mean 'steps'"):
        quick_variant(spec({}, quick={"base": {"step": 5}}))
    with pytest.raises(RaremixError, match=r"quick\.axes names 'seeds'.*did you mean 'seed'"):
        quick_variant(spec({"seed": [0, 1]}, quick={"axes": {"seeds": [0]}}))


@pytest.mark.parametrize("name", sorted(set(packaged_configs("studies")) - {"theory"}))
def test_packaged_studies_expand_to_valid_runs(name: str) -> None:
    """Every shipped study loads, and each of its runs (and its quick variant's) is a config
    its run function accepts: a typo in a packaged YAML fails here, not minutes into a study.
    (The theory lab is one computation with its own config, not a sweep of runs.)"""
    study = load_spec(packaged_configs("studies")[name])
    runs = expand(study) + (expand(quick_variant(study)) if study.quick else [])
    assert runs
    kind = study_record(study.analysis)
    for run in runs:
        kind.check_config(run.config, f"{name}/{run.run_id}")
        if kind.run_fn == "raremix.trainer:run_config":
            cfg = load(TrainConfig, run.config, f"{name}/{run.run_id}")
            resolve(cfg.mixture, batch_size=cfg.batch_size, total_steps=cfg.steps)


def test_declared_only_runs_the_hypotheses_arms_and_resolves_views() -> None:
    from raremix.studies.spec import prepare_study

    svm = prepare_study(load_spec(packaged_configs("studies")["scale-vs-mix"]), False, True, True)
    runs = expand(svm)
    arms = {(r.labels["model.size"], r.labels["mixture"]) for r in runs}
    assert arms == {
        ("12k", "natural"),
        ("400k", "natural"),
        ("12k", "upweight"),
        ("12k", "temperature"),
    }
    assert {r.labels["seed"] for r in runs} == {"100", "101", "102", "103", "104"}
    # the demo's natural-12k arm is a view of longer-12k: the view adds no runs of its own
    demo = prepare_study(load_spec(packaged_configs("studies")["demo"]), False, True, True)
    full = prepare_study(load_spec(packaged_configs("studies")["demo"]), False, True)
    assert {r.run_id for r in expand(demo)} == {r.run_id for r in expand(full)}
    assert {"arm": "longer-12k"} in (demo.only or [])


def test_declared_only_needs_hypotheses_and_matching_arms() -> None:
    from raremix.studies.spec import declared_arms

    with pytest.raises(RaremixError, match="declares no hypotheses: drop --declared-only"):
        declared_arms(spec({"seed": [0, 1]}))
    with pytest.raises(RaremixError, match="no run matches the arms in only"):
        expand(spec({"seed": [0, 1]}, only=[{"seed": "7"}]))
