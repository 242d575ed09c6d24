"""ProbeConfig: the `probes:` section of a training config."""

from __future__ import annotations

from pydantic import Field, field_validator

from raremix.configbase import Config
from raremix.errors import unknown


class ProbeConfig(Config):
    """Which probes run during training, how often, on how many held-out examples."""

    every: int | None = Field(None, ge=1)
    """Probe every this many steps (and at the last); null: with each evaluation."""
    batch: int = Field(32, ge=2)
    """Held-out examples per task in each probe batch (the first of the task's eval set)."""
    probes: list[str] = Field(
        default_factory=lambda: ["interference", "first_order", "neurons", "linear", "entropy"]
    )
    """Probes to run, by name (see `raremix.probes.PROBES`)."""
    layer: int = -1
    """Which block's output (residual stream) the linear probes read; -1 is the last."""

    @field_validator("probes")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        from raremix.probes.core import PROBES

        for name in names:
            if name not in PROBES:
                raise ValueError(str(unknown("probe", name, PROBES)))
        return names
