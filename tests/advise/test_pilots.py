"""The pilot study built from an inventory: the runs it asks for, before anything trains."""

from __future__ import annotations

import pytest

from raremix.advise.inventory import load_inventory, resolve_inventory
from raremix.advise.pilots import pilot_spec, step_flops, validation_spec
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


def test_the_lab_pilot_gives_every_size_the_same_flops_on_the_inventory_mix() -> None:
    inv, base = load_inventory(resolve_inventory("lab"))
    runs = expand(pilot_spec(inv, base))
    assert len(runs) == 3 * 3 * 1
    by_label = {(r.labels["rung"], r.labels["mixture"]): r.config for r in runs}
    assert set(by_label) == {
        (s, m) for s in ("12k", "25k", "100k") for m in ("natural", "x3", "x10")
    }
    for (size, _), config in by_label.items():
        cfg = load_config(data=config)  # every pilot is a valid training config
        assert cfg.rare == ["compare"] and cfg.probes is None
        assert cfg.model.size == size and cfg.optim.schedule == "constant"
        assert cfg.stop_when_learned is not None and cfg.stop_when_learned.tasks == ["compare"]
        _, per_step = step_flops(config, size)
        assert inv.pilot.flops_cap - per_step < cfg.steps * per_step <= inv.pilot.flops_cap
    small, large = by_label[("12k", "natural")], by_label[("100k", "natural")]
    assert small["steps"] > 4 * large["steps"]  # the small model's "longer" is in the pilot
    assert compare_share(by_label[("25k", "natural")]) == pytest.approx(0.03, abs=1e-3)
    assert compare_share(by_label[("25k", "x10")]) == pytest.approx(0.30, abs=1e-3)
    check = expand(validation_spec(inv, base, "100k", 8.0, 5e11))
    assert [r.labels["seed"] for r in check] == ["1", "2", "3"]
    assert compare_share(check[0].config) == pytest.approx(0.24, abs=1e-3)
    _, per_step = step_flops(check[0].config, "100k")
    assert check[0].config["steps"] == int(5e11 // per_step)
