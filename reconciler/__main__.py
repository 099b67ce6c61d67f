"""`python -m reconciler` is the `orch` command."""

from reconciler.cli.main import main

main()
