"""Notifier transports: a webhook, ntfy, a Slack incoming webhook, or a command.

Each send is one attempt with a timeout; a failure raises DeliveryFailed with a short reason that
never contains a secret (no headers, no URL: a Slack webhook URL is itself the token). Notice
texts reach a command only through environment variables, never through the shell line.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import httpx

from reconciler.api.manifest import Notifier
from reconciler.core.notify import Notice

#: How long one attempt may take.
SEND_TIMEOUT_SECONDS = 5.0
#: How long a notifier command may run.
COMMAND_TIMEOUT_SECONDS = 30.0


class DeliveryFailed(Exception):
    """One attempt failed; the message is safe to print."""


def send(notifier: Notifier, notice: Notice) -> None:
    """Deliver `notice` once through the notifier's transport."""
    spec = notifier.spec
    if spec.webhook is not None:
        _post(spec.webhook.url, spec.webhook.headers, json=notice.body())
    elif spec.ntfy is not None:
        headers = {"Title": f"orch: {notice.reason} {notice.object}", **spec.ntfy.headers}
        if notice.reason == "AwaitingHuman":
            headers.setdefault("Priority", "high")
        _post(spec.ntfy.url, headers, content=notice.text().encode())
    elif spec.slack is not None:
        _post(spec.slack.webhook_url, {}, json={"text": notice.text()})
    elif spec.command is not None:
        _run(spec.command, notice)


def _post(
    url: str,
    headers: dict[str, str],
    json: dict[str, Any] | None = None,
    content: bytes | None = None,
) -> None:
    try:
        response = httpx.post(
            url, headers=headers, json=json, content=content, timeout=SEND_TIMEOUT_SECONDS
        )
    except httpx.TimeoutException:
        raise DeliveryFailed(f"no answer within {SEND_TIMEOUT_SECONDS:g}s") from None
    except httpx.HTTPError as err:
        raise DeliveryFailed(f"{type(err).__name__}") from None
    if response.status_code >= 400:
        raise DeliveryFailed(f"HTTP {response.status_code}")


def _run(command: str, notice: Notice) -> None:
    env = {
        **os.environ,
        "ORCH_REASON": notice.reason,
        "ORCH_OBJECT": notice.object,
        "ORCH_STATE": notice.state,
        "ORCH_MESSAGE": notice.text(),
        "ORCH_PROMPT": notice.prompt or "",
    }
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DeliveryFailed(f"the command ran longer than {COMMAND_TIMEOUT_SECONDS:g}s") from None
    except OSError as err:
        raise DeliveryFailed(f"the command could not run: {err.strerror}") from None
    if proc.returncode != 0:
        raise DeliveryFailed(f"the command exited with code {proc.returncode}")
