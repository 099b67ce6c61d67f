"""Pure: what of a stored object is secret, and its printable copy.

A Notifier's webhook headers (tokens) and a Slack incoming-webhook URL (the URL is the token) are
never printed by `get`, `describe`, `diff` or events: they are replaced by REDACTED.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any


REDACTED = "<redacted>"
#: Notifier transports, in the order `get notifiers` names them.
TRANSPORTS = ("webhook", "ntfy", "slack", "command")


def redacted(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` with its secrets replaced (documents of other kinds unchanged)."""
    if document.get("kind") != "Notifier":
        return document
    spec = dict(document.get("spec") or {})
    webhook = spec.get("webhook")
    if isinstance(webhook, dict) and webhook.get("headers"):
        spec["webhook"] = {**webhook, "headers": dict.fromkeys(webhook["headers"], REDACTED)}
    slack = spec.get("slack")
    if isinstance(slack, dict) and "webhookUrl" in slack:
        spec["slack"] = {**slack, "webhookUrl": REDACTED}
    return {**document, "spec": spec}


def notifier_transport(document: dict[str, Any]) -> str:
    """Which transport a Notifier document uses."""
    spec = document.get("spec") or {}
    return next((t for t in TRANSPORTS if spec.get(t)), "")
