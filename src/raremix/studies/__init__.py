"""Studies: each a config, one command, a report and a verdict with seed spread."""

from raremix.studies import analysis as analysis  # registers the analyzers in runner.ANALYZERS
