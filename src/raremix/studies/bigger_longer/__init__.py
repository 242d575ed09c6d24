"""Bigger, longer or remixed: the FLOPs each option needs to learn each rare task, by size,
mix, rare task and Zipf exponent, with compute-equivalence (`verdict.py`).
"""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "bigger-longer",
        "raremix.studies.bigger_longer.verdict:bigger_longer_verdict",
        figures_title="FLOPs to learn",
    )
]
