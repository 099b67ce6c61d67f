"""Notifiers end to end: a local HTTP receiver gets the notice; a dead endpoint slows nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tests.conftest import Orch
from tests.helpers import wait_until
from tests.integration.test_core import agent_doc, pane_pid, state, write_manifest

pytestmark = pytest.mark.tmux


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs, or answers them all with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[float, dict[str, str], Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.posts.append((time.time(), dict(self.headers), json.loads(body or b"{}")))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def failing() -> Iterator[Receiver]:
    found = Receiver(status=503)
    yield found
    found.close()


def notifier_doc(name: str, url: str, on: str, extra: str = "") -> str:
    return f"""\
apiVersion: orch/v1
kind: Notifier
metadata: {{name: {name}}}
spec:
  on: [{on}]
  webhook: {{url: "{url}", headers: {{Authorization: "Bearer s3cret-token"}}}}
{extra}"""


def test_awaiting_human_posts_the_question_within_two_seconds(
    orch: Orch, receiver: Receiver
) -> None:
    path = write_manifest(
        orch, agent_doc("worker"), notifier_doc("phone", receiver.url, "AwaitingHuman")
    )
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")
    orch.run("send", "worker", "ask")
    wait_until(lambda: state(orch, "worker") == "AwaitingHuman", what="AwaitingHuman")
    since = orch.json("events", "--for", "agent/worker")["items"]
    wait_until(lambda: receiver.posts, timeout=5, what="the webhook")
    sent_at, headers, body = receiver.posts[0]
    assert body["reason"] == "AwaitingHuman" and body["object"] == "agent/worker"
    assert body["state"] == "AwaitingHuman"
    assert "Do you want to proceed" in body["prompt"]
    assert {"message", "time"} <= set(body)
    assert headers["Authorization"] == "Bearer s3cret-token"
    awaited = next(e for e in since if e["reason"] == "AwaitingHuman")
    from datetime import datetime

    event_time = datetime.fromisoformat(awaited["time"]).timestamp()
    assert sent_at - event_time < 2.0 + 1.0  # event times have one-second resolution
    for args in (("get", "notifier", "phone", "-o", "yaml"), ("describe", "notifier", "phone")):
        assert "s3cret" not in orch.run(*args).stdout


def test_a_dead_endpoint_is_retried_and_never_delays_a_restart(
    orch: Orch, failing: Receiver
) -> None:
    path = write_manifest(
        orch, agent_doc("worker"), notifier_doc("pager", failing.url, "AwaitingHuman")
    )
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")
    orch.run("send", "worker", "ask")
    wait_until(lambda: failing.posts, timeout=10, what="the first attempt")
    before = pane_pid(orch, "worker")
    started = time.monotonic()
    orch.run("restart", "agent", "worker")
    assert time.monotonic() - started < 10
    assert pane_pid(orch, "worker") != before
    wait_until(lambda: len(failing.posts) >= 3, timeout=15, what="retries")

    def failed_event() -> bool:
        items = orch.json("events", "--for", "notifier/pager")["items"]
        return any(e["reason"] == "NotificationFailed" and e["type"] == "Warning" for e in items)

    wait_until(failed_event, timeout=20, what="NotificationFailed")
    assert "s3cret" not in orch.run("events").stdout


def test_a_finished_run_is_told_to_a_notifier_selecting_its_agents_labels(
    orch: Orch, receiver: Receiver
) -> None:
    labelled = agent_doc("worker").replace(
        "  name: worker\n", "  name: worker\n  labels: {team: app}\n"
    )
    playbook = """\
apiVersion: orch/v1
kind: Playbook
metadata: {name: flow}
spec:
  steps: [{name: only, agent: worker, prompt: "do it"}]
"""
    notifier = notifier_doc("me", receiver.url, "RunSucceeded", "  selector: {team: app}\n")
    path = write_manifest(orch, labelled, playbook, notifier)
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")
    run = orch.run("run", "flow").stdout.split()[0].removeprefix("run/")
    wait_until(lambda: orch.json("get", "runs", run)["status"]["step"] == "only")
    orch.run("step", "done", run)
    wait_until(lambda: receiver.posts, timeout=15, what="the RunSucceeded webhook")
    body = receiver.posts[0][2]
    assert (body["reason"], body["object"], body["state"]) == (
        "RunSucceeded",
        f"run/{run}",
        "Succeeded",
    )
