"""Ordering: rarity-first and structured-first curricula (run function shared with strategies)."""

from raremix.studies.record import Study

_RUN = "raremix.studies.ordering.run:run_ordering"
STUDIES = [
    Study("rarity-first", "raremix.studies.ordering.verdict:rarity_first_verdict", _RUN),
    Study("structured-first", "raremix.studies.ordering.verdict:structured_first_verdict", _RUN),
]
