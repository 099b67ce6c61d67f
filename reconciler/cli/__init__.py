"""The `orch` command: its verbs, rendering and output formats."""
