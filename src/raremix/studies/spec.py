"""Study specs: a base config × named axes → the runs a study executes.

An axis is either a list of values for a dotted config key (`model.size: [xs, s]`,
`seed: [0, 1, 2]`) or a mapping label → value. A value that is a mapping is
deep-merged into the node the axis names; any other value replaces it. A mapping
axis whose name is not a key of the base is merged into the whole config (then the
top-level keys of each variant must exist in the base). Runs are the cartesian product
of the axes in order; a run's id is a hash of its resolved config, so identical configs
share an id and a restarted study recognises the runs it already finished.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from raremix.configbase import Config, load_file, read_yaml
from raremix.errors import RaremixError, did_you_mean
from raremix.studies.hypotheses import Declaration
from raremix.studies.regime import PaperRegime

AxisValues = list[Any] | dict[str, Any]


def _check_axes(axes: Any) -> Any:
    """Each axis is a non-empty list or mapping, and maps to its own run-table column."""
    from raremix.results.store import RUN_COLUMNS, label_column  # DuckDB: not at import time

    if not isinstance(axes, dict):
        return axes  # pydantic reports the type error
    columns: dict[str, str] = {}
    for name, values in axes.items():
        if not isinstance(values, list | dict):
            raise ValueError(
                f"axis '{name}' must be a list of values or a mapping label → value: write e.g. {name}: [a, b]"
            )
        if not values:
            raise ValueError(f"axis '{name}' has no values: give at least one")
        column = label_column(name)
        if column in RUN_COLUMNS:
            raise ValueError(
                f"axis '{name}' clashes with the run-table column '{column}': rename the axis"
            )
        if column in columns:
            raise ValueError(
                f"axes '{columns[column]}' and '{name}' share the column '{column}': rename one"
            )
        columns[column] = name
    return axes


class QuickVariant(Config):
    """A smaller version of a study for smoke tests (`raremix study run --quick`)."""

    base: dict[str, Any] = Field(default_factory=dict)
    """Partial config deep-merged into the base (e.g. fewer steps); its keys must exist there."""
    axes: dict[str, AxisValues] = Field(default_factory=dict)
    """Replacement values for some of the study's axes, e.g. `seed: [0]`."""

    @field_validator("axes", mode="before")
    @classmethod
    def _valid_axes(cls, axes: Any) -> Any:
        return _check_axes(axes)


class StudySpec(Config):
    """A study: one base config swept over named axes."""

    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    """Study name (letters, digits, '_', '-', '.'); names the output dir and the analyzer."""
    description: str = ""
    """One line on what the study asks."""
    base: dict[str, Any] | str
    """The base run config, inline or as a YAML path relative to the study file."""
    axes: dict[str, AxisValues] = Field(default_factory=dict)
    """Ordered axes: dotted key → list of values, or name → {label: value or partial config}."""
    workers: int | None = Field(None, ge=1)
    """Parallel runs on the local backend (default: CPU cores // threads_per_run)."""
    threads_per_run: int = Field(1, ge=1)
    """CPU threads each run may use (1 is fastest for small models)."""
    run_fn: str | None = None
    """'module:function' that trains one run (default: the analysis's, else raremix's trainer)."""
    analysis: str | None = None
    """Which registered analysis judges the study (`raremix.studies.registry`; default: scale)."""
    hypotheses: Declaration | None = None
    """The pre-registered hypotheses, α, seeds and thresholds (docs/statistics.md)."""
    regime: PaperRegime | None = None
    """The reproduced paper's regime, printed beside raremix's (computed) atop the report."""
    quick: QuickVariant | None = None
    """A smaller variant for `--quick` smoke runs."""
    only: list[dict[str, str]] | None = None
    """Run only the runs of these arms (axis → label; a run matches an arm whose labels it
    carries); None: the full product of the axes. `--declared-only` sets it to the arms the
    hypotheses name."""

    @field_validator("axes", mode="before")
    @classmethod
    def _valid_axes(cls, axes: Any) -> Any:
        return _check_axes(axes)

    @field_validator("analysis")
    @classmethod
    def _known_analysis(cls, analysis: str | None) -> str | None:
        from raremix.studies.registry import STUDIES

        if analysis is not None and analysis not in STUDIES:
            raise ValueError(f"unknown analysis '{analysis}': {did_you_mean(analysis, STUDIES)}")
        return analysis


class RunSpec(Config):
    """One run of a study: its id, its axis labels and its resolved config."""

    run_id: str
    """Short hash of the resolved config (identical configs share it)."""
    labels: dict[str, str]
    """Axis name → the label of this run's value on that axis."""
    config: dict[str, Any]
    """The base config with this run's axis values applied."""


# --- config helpers ------------------------------------------------------------------


def canonical_json(config: dict[str, Any]) -> str:
    """Sorted, compact JSON: equal configs give equal text."""
    return json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def run_id_of(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config's canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


def deep_merge(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `partial` merged in: mappings merge, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in partial.items():
        old = out.get(key)
        out[key] = (
            deep_merge(old, value)
            if isinstance(old, dict) and isinstance(value, dict)
            else copy.deepcopy(value)
        )
    return out


def dotted_keys(config: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path of a nested mapping: `model`, `model.size`, …"""
    for key, value in config.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from dotted_keys(value, path + ".")


def _has_key(config: dict[str, Any], dotted: str) -> bool:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def label_of(value: Any) -> str:
    """How a list-axis value is labelled: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def axis_variants(name: str, values: AxisValues) -> list[tuple[str, Any]]:
    """An axis as (label, value) pairs; labels must be distinct."""
    pairs = list(values.items()) if isinstance(values, dict) else [(label_of(v), v) for v in values]
    labels = [label for label, _ in pairs]
    for label in labels:
        if labels.count(label) > 1:
            raise RaremixError(f"axis '{name}' repeats the value '{label}': list each value once")
    return [(str(label), value) for label, value in pairs]


def apply_axis(config: dict[str, Any], name: str, label: str, value: Any) -> dict[str, Any]:
    """`config` with one axis value applied (a new dict)."""
    if _has_key(config, name):
        *parents, leaf = name.split(".")
        out = copy.deepcopy(config)
        node = out
        for part in parents:
            node = node[part]
        old = node[leaf]
        node[leaf] = (
            deep_merge(old, value)
            if isinstance(old, dict) and isinstance(value, dict)
            else copy.deepcopy(value)
        )
        return out
    hint = did_you_mean(name, dotted_keys(config))
    if not isinstance(value, dict):
        raise RaremixError(f"axis '{name}' is not a key of the base config: {hint}")
    stray = [k for k in value if k not in config]
    if stray:
        raise RaremixError(
            f"axis '{name}' is not a key of the base config ({hint}), and its variant '{label}' sets "
            f"'{stray[0]}', which is not a top-level key either: fix the axis name or the variant"
        )
    return deep_merge(config, value)


# --- specs ---------------------------------------------------------------------------


def resolve_base(spec: StudySpec, relative_to: str | Path = ".") -> StudySpec:
    """The spec with a base given as a path replaced by the config it names."""
    if isinstance(spec.base, dict):
        return spec
    data = read_yaml(Path(relative_to) / spec.base)
    if not isinstance(data, dict):
        raise RaremixError(
            f"{spec.base}: a base config must be a mapping of keys to values: fix the file"
        )
    return spec.model_copy(update={"base": data})


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study YAML, loading a base given as a path next to it."""
    p = Path(path)
    spec = resolve_base(load_file(StudySpec, p), p.parent)
    check_hypotheses(spec, str(p))
    return spec


def check_hypotheses(spec: StudySpec, where: str = "study") -> None:
    """One line naming the problem if a hypothesis names an unknown axis label or task."""
    if spec.hypotheses is None:
        return
    base = resolve_base(spec).base
    assert isinstance(base, dict)
    axes = {
        name: [label for label, _ in axis_variants(name, values)]
        for name, values in spec.axes.items()
    }
    tasks = [str(t) for t in base.get("tasks", {}) or {}]
    try:
        spec.hypotheses.check_against(axes, tasks)
    except ValueError as err:
        raise RaremixError(f"{where}: hypotheses: {err}") from None


def confirm_variant(spec: StudySpec, eval_seed_key: str | None) -> StudySpec:
    """The study on its declared confirmation seeds, with a fresh held-out draw (PROTOCOL §3).

    The seed axis takes the declared confirmation seeds; the base config's `eval_seed_key`
    (when the run function has one) takes the declared evaluation seed.
    """
    if spec.hypotheses is None:
        raise RaremixError(
            f"study '{spec.name}' declares no hypotheses: add a hypotheses section "
            "(docs/statistics.md) or drop --confirm"
        )
    if "seed" not in spec.axes:
        raise RaremixError(f"study '{spec.name}' has no seed axis to confirm on: add seed: [...]")
    base = resolve_base(spec).base
    assert isinstance(base, dict)
    if eval_seed_key is not None:
        partial: dict[str, Any] = {}
        node = partial
        *parents, leaf = eval_seed_key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = spec.hypotheses.eval_seed
        base = deep_merge(base, partial)
    axes = {**spec.axes, "seed": list(spec.hypotheses.confirmation_seeds)}
    return spec.model_copy(update={"base": base, "axes": axes})


def spec_yaml(spec: StudySpec) -> str:
    """The spec as YAML text (what `study.yaml` in a study directory holds)."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_spec(spec: StudySpec, study_dir: str | Path) -> None:
    """Write `study_dir/study.yaml` atomically, refusing a directory that holds another study."""
    out = Path(study_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.yaml"
    if path.exists():
        old = read_yaml(path) or {}
        if isinstance(old, dict) and old.get("name", spec.name) != spec.name:
            raise RaremixError(f"{out} holds study '{old['name']}': choose another output dir")
    tmp = out / f".study.yaml.{os.getpid()}.tmp"
    tmp.write_text(spec_yaml(spec))
    os.replace(tmp, path)


def quick_variant(spec: StudySpec) -> StudySpec:
    """The spec's `quick` section applied: a smaller study with the same name."""
    if spec.quick is None:
        raise RaremixError(
            f"study '{spec.name}' has no 'quick' section: add one (base, axes) or drop --quick"
        )
    base = resolve_base(spec).base
    assert isinstance(base, dict)
    for key in dotted_keys(spec.quick.base):
        if not _has_key(base, key):
            raise RaremixError(
                f"quick.base sets '{key}', which is not in the base config: {did_you_mean(key, dotted_keys(base))}"
            )
    for axis in spec.quick.axes:
        if axis not in spec.axes:
            raise RaremixError(
                f"quick.axes names '{axis}', which is not an axis of the study: {did_you_mean(axis, spec.axes)}"
            )
    return spec.model_copy(
        update={
            "base": deep_merge(base, spec.quick.base),
            "axes": {**spec.axes, **spec.quick.axes},
            "quick": None,
        }
    )


def expand(spec: StudySpec) -> list[RunSpec]:
    """The study's runs: the cartesian product of its axes (first axis slowest)."""
    try:
        return _expand(spec)
    except RaremixError as err:
        raise RaremixError(f"study '{spec.name}': {err}") from None


def _expand(spec: StudySpec) -> list[RunSpec]:
    runs = _product(spec)
    if spec.only is None:
        return runs
    kept = [r for r in runs if any(arm.items() <= r.labels.items() for arm in spec.only)]
    if not kept:
        raise RaremixError(f"no run matches the arms in only: {spec.only}: name axis labels")
    return kept


def declared_arms(spec: StudySpec) -> list[dict[str, str]]:
    """The arms the hypotheses name, a view replaced by the arm whose runs it cuts."""
    if spec.hypotheses is None:
        raise RaremixError(
            f"study '{spec.name}' declares no hypotheses: drop --declared-only to run every arm"
        )
    views = {(v.axis, v.name): v.of for v in spec.hypotheses.views}
    arms: list[dict[str, str]] = []
    for h in spec.hypotheses.tests:
        for arm in (h.treatment, h.control):
            source = dict(arm)
            for axis, label in arm.items():
                if (axis, label) in views:
                    del source[axis]
                    source.update(views[(axis, label)])
            if source not in arms:
                arms.append(source)
    return arms


def _product(spec: StudySpec) -> list[RunSpec]:
    base = resolve_base(spec).base
    assert isinstance(base, dict)
    axes = [(name, axis_variants(name, values)) for name, values in spec.axes.items()]
    runs: list[RunSpec] = []
    seen: dict[str, dict[str, str]] = {}
    for combo in itertools.product(*(variants for _, variants in axes)):
        config, labels = copy.deepcopy(base), {}
        for (name, _), (label, value) in zip(axes, combo, strict=True):
            config = apply_axis(config, name, label, value)
            labels[name] = label
        run_id = run_id_of(config)
        if run_id in seen:
            raise RaremixError(
                f"runs {seen[run_id]} and {labels} have identical configs: remove the duplicate axis value"
            )
        seen[run_id] = labels
        runs.append(RunSpec(run_id=run_id, labels=labels, config=config))
    return runs


def prepare_study(
    study: StudySpec, quick: bool, confirm: bool, declared_only: bool = False
) -> StudySpec:
    """The study as it will run: on its confirmation seeds (`confirm`), then made small (`quick`),
    then cut to the arms its hypotheses name (`declared_only`).

    A quick confirmation keeps the first two confirmation seeds (the fewest a test can use).
    """
    from raremix.studies.registry import study_record

    if confirm:
        study = confirm_variant(study, study_record(study.analysis).eval_seed_key)
    if quick:
        confirmed = study.axes.get("seed") if confirm else None
        study = quick_variant(study)
        if isinstance(confirmed, list):
            study = study.model_copy(update={"axes": {**study.axes, "seed": confirmed[:2]}})
    if declared_only:
        study = study.model_copy(update={"only": declared_arms(study)})
        expand(study)  # every declared arm matches a run of the (quick) axes
    return study
