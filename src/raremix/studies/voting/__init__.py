"""Voting: extreme decomposition with first-to-ahead-by-k voting (MAKER)."""

from raremix.studies.record import Study

STUDIES = [
    Study(
        "voting",
        "raremix.studies.voting.verdict:voting_verdict",
        "raremix.studies.voting.run:voting_run",
        eval_seed_key=None,
        config_type="raremix.studies.voting.run:VotingConfig",
        models="raremix.studies.voting.run:voting_models",
    )
]
