"""The study registry: every packaged analysis in one place, chosen by the YAML's `analysis:`.

A `Study` record says how a kind of study is run and judged: its verdict function, its
run function, and where (if anywhere) its runs' config takes the held-out evaluation
seed that `--confirm` refreshes. A study YAML names its record with `analysis:`; nothing
is keyed on a study's `name:`, so a renamed copy keeps its analysis. Adding a study is
one YAML, its run/verdict modules and one line in `STUDIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raremix.errors import unknown

TRAINER_RUN_FN = "raremix.trainer:run_config"


@dataclass(frozen=True)
class Study:
    """How one kind of study is run and judged."""

    analysis: str
    """The name a study YAML gives in `analysis:`."""
    verdict: str
    """'module:function' computing the Verdict from (final table, context, analysis dir)."""
    run_fn: str = TRAINER_RUN_FN
    """'module:function' that trains one run."""
    eval_seed_key: str | None = "eval_seed"
    """Dotted key of the run config's held-out draw seed (None: the run function has none)."""
    config_type: str = "raremix.config:TrainConfig"
    """'module:Class' each run's config must validate as, checked before any worker starts."""

    def check_config(self, config: dict[str, Any], where: str) -> None:
        """Validate one run's config as `config_type` (a one-line RaremixError otherwise)."""
        import importlib

        from raremix.configbase import load

        module, _, name = self.config_type.partition(":")
        load(getattr(importlib.import_module(module), name), config, where)


_A = "raremix.studies.analysis_"
STUDIES: dict[str, Study] = {
    s.analysis: s
    for s in [
        Study("scale", _A + "scale:scale_verdict"),
        Study("demo", _A + "demo:demo_verdict"),
        Study("injection", _A + "injection:injection_verdict"),
        Study(
            "strategies",
            _A + "strategies:strategies_verdict",
            "raremix.studies.ordering_run:run_ordering",
        ),
        Study(
            "rarity-first",
            _A + "ordering:rarity_first_verdict",
            "raremix.studies.ordering_run:run_ordering",
        ),
        Study(
            "structured-first",
            _A + "ordering:structured_first_verdict",
            "raremix.studies.ordering_run:run_ordering",
        ),
        Study(
            "decomposition",
            _A + "decomposition:decomposition_verdict",
            "raremix.studies.decomposition:run_decomposition",
        ),
        Study(
            "distillation",
            _A + "distillation:distillation_verdict",
            "raremix.studies.distill_run:run_distill",
            None,
            "raremix.studies.distill_run:DistillConfig",
        ),
        Study("depth-width", _A + "depth_width:depth_width_verdict"),
        Study("bigger-longer", _A + "bigger_longer:bigger_longer_verdict"),
        Study(
            "instructions",
            _A + "instructions:instructions_verdict",
            "raremix.studies.instructions:run_instructions",
        ),
        Study(
            "voting",
            _A + "voting:voting_verdict",
            "raremix.studies.voting_run:voting_run",
            None,
            "raremix.studies.voting_run:VotingConfig",
        ),
    ]
}
"""Analysis name → its record. The default (`scale`) degrades to a per-group table."""
DEFAULT_ANALYSIS = "scale"


def study_record(analysis: str | None) -> Study:
    """The record for `analysis` (the default when None); unknown names are one-line errors."""
    name = analysis or DEFAULT_ANALYSIS
    if name not in STUDIES:
        raise unknown("analysis", name, STUDIES)
    return STUDIES[name]
