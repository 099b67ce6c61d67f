"""`python -m reconciler` is the `orch` command."""

from reconciler.cli import main

main()
