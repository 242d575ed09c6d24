"""`python -m raremix` is the `raremix` command."""

from raremix.cli import main

main()
