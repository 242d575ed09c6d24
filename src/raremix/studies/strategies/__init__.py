"""Strategies: static vs adaptive mixture weightings for a rare task (curricula runs)."""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "strategies",
        "raremix.studies.strategies.verdict:strategies_verdict",
        "raremix.studies.ordering.run:run_ordering",
    )
]
