"""Decomposition: one umbrella task vs its sub-tasks, measured on new tools."""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "decomposition",
        "raremix.studies.decomposition.verdict:decomposition_verdict",
        "raremix.studies.decomposition.run:run_decomposition",
    )
]
