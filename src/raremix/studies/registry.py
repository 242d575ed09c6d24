"""The study registry: one line per study folder, chosen by the YAML's `analysis:`.

A `Study` record (`raremix.studies.record`) says how a kind of study is run, judged and
reported. A study YAML names its record with `analysis:`; nothing is keyed on a study's
`name:`, so a renamed copy keeps its analysis. Adding a study is one folder (its
`__init__.py` declaring its record, its run/verdict modules and its packaged YAML) and one
line in `FOLDERS`.
"""

from __future__ import annotations

import importlib

from raremix.errors import unknown
from raremix.studies.record import TRAINER_RUN_FN, Study

__all__ = ["DEFAULT_ANALYSIS", "FOLDERS", "STUDIES", "TRAINER_RUN_FN", "Study"]

FOLDERS = [
    "scale",
    "injection",
    "strategies",
    "ordering",
    "decomposition",
    "distillation",
    "depth_width",
    "instructions",
    "theory",
    "voting",
    "demo",
    "bigger_longer",
]
"""The study folders under `raremix/studies/`; each declares `STUDIES: list[Study]` in its
`__init__.py` (cheap to import: references to its code are resolved on use) and ships its
YAMLs beside it."""

STUDIES: dict[str, Study] = {
    s.analysis: s
    for folder in FOLDERS
    for s in importlib.import_module(f"raremix.studies.{folder}").STUDIES
}
"""Analysis name → its record. The default (`scale`) degrades to a per-group table."""
DEFAULT_ANALYSIS = "scale"


def study_record(analysis: str | None) -> Study:
    """The record for `analysis` (the default when None); unknown names are one-line errors."""
    name = analysis or DEFAULT_ANALYSIS
    if name not in STUDIES:
        raise unknown("analysis", name, STUDIES)
    return STUDIES[name]
