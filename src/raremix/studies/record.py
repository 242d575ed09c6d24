"""The `Study` record: how one kind of study is run, judged and reported.

Each study folder (`raremix/studies/<name>/`) declares its records in its `__init__.py`;
`raremix.studies.registry` lists the folders. References to code are 'module:function'
strings resolved on use: the runner's workers import this package, and resolving lazily
keeps pandas, matplotlib and the study modules out of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from raremix.report.content import Report
    from raremix.studies.analysis import Verdict
    from raremix.studies.analysis_final import StudyResults
    from raremix.studies.regime import ModelsFn

TRAINER_RUN_FN = "raremix.trainer:run_config"

VerdictFn = Callable[["StudyResults", Path], "Verdict"]
"""(the study read once, its `analysis/` dir) → its verdict; figures go under the dir."""
ReportFn = Callable[[Path, "Verdict"], "Report"]
"""(study dir, verdict) → the whole report, for a study that is not a sweep of runs."""
ExecuteFn = Callable[[Path, bool], "Verdict"]
"""(output dir, quick) → the verdict, for a lab computed in-process instead of by the runner."""
FinalColumnsFn = Callable[["pd.DataFrame", "pd.DataFrame"], "pd.DataFrame"]
"""(final table, run table) → the final table with the study's own columns added."""


@dataclass(frozen=True)
class Study:
    """How one kind of study is run, judged and reported (see the module docstring)."""

    analysis: str
    """The name a study YAML gives in `analysis:`."""
    verdict: str
    """'module:function', a `VerdictFn` (a study with an `execute` judges itself there; its
    verdict says so if a sweep of runs names it)."""
    run_fn: str = TRAINER_RUN_FN
    """'module:function' that trains one run."""
    eval_seed_key: str | None = "eval_seed"
    """Dotted key of the run config's held-out draw seed (None: the run function has none)."""
    config_type: str = "raremix.config:TrainConfig"
    """'module:Class' each run's config must validate as, checked before any worker starts."""
    figures_title: str = "Results"
    """The report section that shows the verdict's figures."""
    figure_how: str = ""
    """How to read the verdict's figures when the verdict does not say (report text)."""
    final_columns: str | None = None
    """'module:function', a `FinalColumnsFn` adding the study's own final-table columns."""
    report: str | None = None
    """'module:function', a `ReportFn` replacing the runner study's report (None: that one)."""
    execute: str | None = None
    """'module:function', an `ExecuteFn`: the study runs in-process, not as a sweep of runs."""
    models: str = "raremix.studies.regime:train_config_models"
    """'module:function', a `ModelsFn`: one run's config → the models it trains (parameters,
    tokens), for the regime header; an in-process study's gets its whole YAML."""

    def verdict_fn(self) -> VerdictFn:
        """The verdict function."""
        fn: VerdictFn = _resolve(self.verdict)
        return fn

    def final_columns_fn(self) -> FinalColumnsFn | None:
        """The final-table extension, if the study has one."""
        return _resolve(self.final_columns) if self.final_columns else None

    def report_fn(self) -> ReportFn | None:
        """The study's own report builder, if it replaces the runner study's."""
        return _resolve(self.report) if self.report else None

    def execute_fn(self) -> ExecuteFn | None:
        """The in-process lab, if the study is one."""
        return _resolve(self.execute) if self.execute else None

    def models_fn(self) -> ModelsFn:
        """The function listing the models one run trains (the regime header's side)."""
        fn: ModelsFn = _resolve(self.models)
        return fn

    def check_config(self, config: dict[str, Any], where: str) -> None:
        """Validate one run's config as `config_type` (a one-line RaremixError otherwise)."""
        from raremix.configbase import load

        load(_resolve(self.config_type), config, where)


def _resolve(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
