"""Studies: each a config, one command, a report and a verdict with seed spread."""
