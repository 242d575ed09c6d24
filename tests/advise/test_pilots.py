"""The pilot study built from an inventory: the runs it asks for, before anything trains."""

from __future__ import annotations

import pytest

from raremix.advise.inventory import load_inventory, resolve_inventory
from raremix.advise.pilots import pilot_spec, validation_spec
from raremix.config import load_config
from raremix.configbase import load
from raremix.mixture import MixtureConfig, resolve
from raremix.studies.spec import expand


def compare_share(config: dict) -> float:
    """The share of 'compare' in the examples a run config draws."""
    steps = config["steps"]
    plan = resolve(
        load(MixtureConfig, config["mixture"]), batch_size=config["batch_size"], total_steps=steps
    )
    return float(plan.schedule.cumulative(steps)[list(plan.names).index("compare")] / steps)


def test_the_lab_pilot_is_sizes_by_factors_by_seeds_on_the_inventory_mix() -> None:
    inv, base = load_inventory(resolve_inventory("lab"))
    runs = expand(pilot_spec(inv, base))
    assert len(runs) == 3 * 3 * 1
    by_label = {(r.labels["model.size"], r.labels["mixture"]): r.config for r in runs}
    assert set(by_label) == {
        (s, m) for s in ("12k", "25k", "100k") for m in ("natural", "x3", "x10")
    }
    for config in by_label.values():
        cfg = load_config(data=config)  # every pilot is a valid training config
        assert cfg.rare == ["compare"] and cfg.probes is None
        assert cfg.tasks["compare"].complexity == 3  # from the base config
    assert compare_share(by_label[("25k", "natural")]) == pytest.approx(0.03, abs=1e-3)
    assert compare_share(by_label[("25k", "x10")]) == pytest.approx(0.30, abs=1e-3)
    check = expand(validation_spec(inv, base, "100k", 8.0))
    assert [r.labels["seed"] for r in check] == ["1", "2", "3"]
    assert compare_share(check[0].config) == pytest.approx(0.24, abs=1e-3)
