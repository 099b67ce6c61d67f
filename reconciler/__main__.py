"""`python -m reconciler` is the `orch` command."""

from reconciler.cli.entry import main

main()
