"""The demo: bigger, longer or remixed, in FLOPs-to-learn (Kaplan–Meier curves per arm).

The verdict (`verdict.py`) reads the one FLOPs-to-learn table; `demo.yaml` ships here.
"""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "demo",
        "raremix.studies.demo.verdict:demo_verdict",
        figures_title="FLOPs to learn",
    )
]
