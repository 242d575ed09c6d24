"""The theory lab: a NumPy capacity/interference toy computed in-process (seconds), not a
sweep of runs: its record has an `execute` and its own report.
"""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "theory",
        "raremix.studies.theory.verdict:swept_runs_verdict",
        execute="raremix.studies.theory.verdict:theory_study",
        report="raremix.studies.theory.report:theory_report",
        models="raremix.studies.theory.verdict:theory_models",
    )
]
