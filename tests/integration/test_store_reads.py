"""The controller's cached store reads: re-read once any connection (its own included) committed."""

from __future__ import annotations

from pathlib import Path

from reconciler.adapters.store import Store
from reconciler.api.status import AgentRecord
from reconciler.controller.storereads import StoreReads


def test_reads_are_kept_until_a_commit_of_any_connection(tmp_path: Path) -> None:
    own, cli = Store(tmp_path), Store(tmp_path)
    reads = StoreReads(own)
    reads.begin_pass()
    assert reads.agent_records_checked() == ({}, {})
    first = AgentRecord.new("a", 1.0)
    cli.commit_pass({"a": first}, [], [])  # another process (the CLI)
    assert reads.agent_records_checked() == ({}, {})  # seen from the next pass on
    reads.begin_pass()
    assert reads.agent_records_checked()[0] == {"a": first}
    second = AgentRecord.new("b", 2.0)
    own.commit_pass({"b": second}, [], [])  # the controller's own commit: seen at once
    assert reads.agent_records_checked()[0] == {"a": first, "b": second}
    reads.agent_records_checked()[0].clear()  # callers get copies
    assert len(reads.agent_records_checked()[0]) == 2
    own.close()
    cli.close()
