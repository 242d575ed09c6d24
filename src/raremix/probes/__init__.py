"""Probes: see interference, forgetting and capacity while a model trains.

Plain functions of a model and per-task batches `{task: (idx, targets)}`, usable in any
PyTorch loop; `probe()` runs several from one pass per task. The raremix trainer runs
them through `raremix.callbacks.probes.ProbeCallback`, Hugging Face's `Trainer` through
`raremix.callbacks.hf.RaremixProbeCallback`. Retention functions read stored curves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Retention reads stored curves (NumPy only): a study's analysis uses it without torch.
from raremix.probes.retention import (
    Event,
    acquire_then_forget,
    bwt,
    peak_final,
    phase_matrix,
    retention_table,
    time_to_learn,
)

if TYPE_CHECKING:
    from raremix.probes.capture import (
        default_forward,
        neuron_modules,
        residual_modules,
        shift_labels,
    )
    from raremix.probes.config import ProbeConfig
    from raremix.probes.core import DEFAULT_PROBES, PROBES, ProbeResults, probe, to_rows
    from raremix.probes.entropy import answer_entropy, token_entropy
    from raremix.probes.gradients import (
        FirstOrder,
        common_gradient,
        cosine_matrix,
        first_order,
        grad_norms,
        interference,
        pairwise_cosines,
        task_gradients,
    )
    from raremix.probes.linear_probe import probe_accuracy
    from raremix.probes.neurons import dead_fraction, neuron_attribution, neuron_share

__all__ = [
    "DEFAULT_PROBES",
    "PROBES",
    "Event",
    "FirstOrder",
    "ProbeConfig",
    "ProbeResults",
    "acquire_then_forget",
    "answer_entropy",
    "bwt",
    "common_gradient",
    "cosine_matrix",
    "dead_fraction",
    "default_forward",
    "first_order",
    "grad_norms",
    "interference",
    "neuron_attribution",
    "neuron_modules",
    "neuron_share",
    "pairwise_cosines",
    "peak_final",
    "phase_matrix",
    "probe",
    "probe_accuracy",
    "residual_modules",
    "retention_table",
    "shift_labels",
    "task_gradients",
    "time_to_learn",
    "to_rows",
    "token_entropy",
]


_LAZY = {
    "default_forward": "raremix.probes.capture",
    "neuron_modules": "raremix.probes.capture",
    "residual_modules": "raremix.probes.capture",
    "shift_labels": "raremix.probes.capture",
    "ProbeConfig": "raremix.probes.config",
    "DEFAULT_PROBES": "raremix.probes.core",
    "PROBES": "raremix.probes.core",
    "ProbeResults": "raremix.probes.core",
    "probe": "raremix.probes.core",
    "to_rows": "raremix.probes.core",
    "answer_entropy": "raremix.probes.entropy",
    "token_entropy": "raremix.probes.entropy",
    "FirstOrder": "raremix.probes.gradients",
    "common_gradient": "raremix.probes.gradients",
    "cosine_matrix": "raremix.probes.gradients",
    "first_order": "raremix.probes.gradients",
    "grad_norms": "raremix.probes.gradients",
    "interference": "raremix.probes.gradients",
    "pairwise_cosines": "raremix.probes.gradients",
    "task_gradients": "raremix.probes.gradients",
    "probe_accuracy": "raremix.probes.linear_probe",
    "dead_fraction": "raremix.probes.neurons",
    "neuron_attribution": "raremix.probes.neurons",
    "neuron_share": "raremix.probes.neurons",
}
"""Names whose modules import torch: loaded on first use."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raremix.probes' has no attribute {name!r}")
