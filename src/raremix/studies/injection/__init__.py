"""Injection: the lowest rate at which each model size learns an injected rare task."""

from raremix.studies.injection.report import HOW_HEATMAP
from raremix.studies.record import Study

STUDIES = [
    Study(
        "injection",
        "raremix.studies.injection.verdict:injection_verdict",
        figures_title="Injection rate × model size",
        figure_how=HOW_HEATMAP,
        final_columns="raremix.studies.injection.verdict:with_rates",
    )
]
