"""Instructions: which task framing transfers to held-out tasks."""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "instructions",
        "raremix.studies.instructions.verdict:instructions_verdict",
        "raremix.studies.instructions.run:run_instructions",
    )
]
