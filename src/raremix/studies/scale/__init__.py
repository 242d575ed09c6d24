"""Scale vs mix: does a better data mix buy what a bigger model buys for a rare task?

The verdict (`verdict.py`) also judges any study that names no analysis, and the demo;
`scale-vs-mix.yaml` and `demo.yaml` ship here.
"""

from raremix.studies.record import Study
from raremix.studies.scale.report import HOW_FRONTIER

STUDIES = [
    Study(
        "scale",
        "raremix.studies.scale.verdict:scale_verdict",
        figures_title="Frontier",
        figure_how=HOW_FRONTIER,
    )
]
