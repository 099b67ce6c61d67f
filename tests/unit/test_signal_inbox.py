"""`orch signal`'s store side: bounded, refusing bad names, never creating an installation, and
read back by the controller's store in order."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from reconciler.adapters.signal_inbox import (
    KEEP_PER_AGENT,
    read_payload,
    record_signal,
    run,
)
from reconciler.adapters.store import Store
from reconciler.adapters.wake import WakeChannel


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def test_signals_are_stored_in_order_and_read_back(store: Store) -> None:
    assert record_signal(store.state_dir, "dev", "UserPromptSubmit", {"session_id": "s"})
    assert record_signal(store.state_dir, "dev", "Stop", {})
    assert record_signal(store.state_dir, "other", "Stop", {})
    found = store.agent_signals_after(0)
    assert [(s.agent, s.event) for s in found] == [
        ("dev", "UserPromptSubmit"),
        ("dev", "Stop"),
        ("other", "Stop"),
    ]
    assert found[0].payload == {"session_id": "s"}
    assert store.agent_signals_after(found[1].id) == found[2:]
    assert [s.event for s in store.recent_agent_signals("dev", 1)] == ["Stop"]


def test_each_agent_keeps_only_its_latest_signals(store: Store) -> None:
    for i in range(KEEP_PER_AGENT + 10):
        record_signal(store.state_dir, "dev", f"E{i}", {})
    kept = store.recent_agent_signals("dev", 1000)
    assert len(kept) == KEEP_PER_AGENT
    assert kept[0].event == f"E{KEEP_PER_AGENT + 9}"


def test_a_forgotten_agent_loses_its_signals(store: Store) -> None:
    record_signal(store.state_dir, "dev", "Stop", {})
    store.commit_pass({"dev": None}, [], [], [], {})
    assert store.agent_signals_after(0) == []


@pytest.mark.parametrize(
    ("agent", "event"),
    [
        ("Dev", "Stop"),
        ("-rf", "Stop"),
        ("a" * 41, "Stop"),
        ("dev", "-x"),
        ("dev", "a b"),
        ("dev", ""),
    ],
)
def test_bad_names_are_refused(store: Store, agent: str, event: str) -> None:
    assert not record_signal(store.state_dir, agent, event, {})
    assert store.agent_signals_after(0) == []


def test_no_installation_is_created(tmp_path: Path) -> None:
    assert not record_signal(tmp_path / "nowhere", "dev", "Stop", {})
    assert run(["dev", "Stop"], str(tmp_path / "nowhere")) == 0
    assert not (tmp_path / "nowhere").exists()


def test_a_signal_wakes_the_controller(store: Store) -> None:
    channel = WakeChannel(store.state_dir / "controller.wake")
    try:
        channel.drain()
        record_signal(store.state_dir, "dev", "Stop", {})
        assert os.read(channel.fd, 10) == b"!"
    finally:
        channel.close()


def test_a_payload_too_large_is_drained_and_dropped() -> None:
    read_end, write_end = os.pipe()
    big = b'{"session_id": "' + b"x" * 300_000 + b'"}'

    def writer() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(big)  # blocks unless the reader drains it all

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_end, "rb") as stream:
        assert read_payload(stream, limit=1000) == {"truncated": "true"}
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_payload_that_never_ends_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reconciler.adapters.signal_inbox.READ_SECONDS", 0.05)
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb") as stream:
            assert read_payload(stream) == {"truncated": "true"}
    finally:
        os.close(write_end)


def test_arguments_of_another_shape_go_to_the_full_cli(store: Store) -> None:
    assert run(["dev"], str(store.state_dir)) == 2
    assert run(["dev", "Stop", "--other", "x"], str(store.state_dir)) == 2
    assert run(["--help", "Stop"], str(store.state_dir)) == 2
    payload = '{"type": "agent-turn-complete", "thread-id": "t", "input-messages": ["secret"]}'
    assert run(["dev", "notify", "--json", payload], str(store.state_dir)) == 0
    (stored,) = store.agent_signals_after(0)
    assert stored.payload == {"type": "agent-turn-complete", "thread-id": "t"}
