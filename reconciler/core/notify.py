"""Pure: which events tell people they are needed, what the notice says, whom it goes to, and how
often (throttle) and how persistently (retry backoff) it is sent.

The controller writes events; a notification worker reads them, turns the ones a Notifier wants
into notices, and hands them to transports off the control loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.api.manifest import Notifier
from reconciler.core.selectors import Requirement, selects

#: (object kind, event reason) -> the notice reason a Notifier's `on` names.
NOTICE_REASONS: Mapping[tuple[str, str], str] = {
    ("agent", "AwaitingHuman"): "AwaitingHuman",
    ("agent", "CrashLoopBackOff"): "CrashLooping",
    ("agent", "RateLimited"): "CoolingDown",
    ("agent", "AccountCoolingDown"): "CoolingDown",
    ("agent", "CooldownContinues"): "CoolingDown",
    ("agent", "DeliveryUnconfirmed"): "DeliveryUnconfirmed",
    ("run", "AwaitingApproval"): "ApprovalNeeded",
    ("run", "Succeeded"): "RunSucceeded",
    ("run", "GateFailed"): "RunFailed",
    ("run", "AgentNotFound"): "RunFailed",
}
#: Seconds between tries of a failed delivery: retried with backoff, then given up (an event).
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
#: The longest prompt or message a notice carries.
MAX_TEXT = 2000


def notice_reason(obj: str, event_reason: str) -> str | None:
    """The notice an event calls for, if any."""
    kind = obj.partition("/")[0]
    return NOTICE_REASONS.get((kind, event_reason))


@dataclass(frozen=True)
class Notice:
    """One thing people are told: the contract's JSON body, and who it is about."""

    reason: str
    object: str
    state: str
    message: str
    time: float
    prompt: str | None = None
    deadline: float | None = None

    def body(self) -> dict[str, Any]:
        """The webhook's JSON: {reason, object, state, message, time, prompt} (and deadline)."""
        body: dict[str, Any] = {
            "reason": self.reason,
            "object": self.object,
            "state": self.state,
            "message": self.message[:MAX_TEXT],
            "time": _iso(self.time),
            "prompt": self.prompt[:MAX_TEXT] if self.prompt else None,
        }
        if self.deadline is not None:
            body["deadline"] = _iso(self.deadline)
        return body

    def text(self) -> str:
        """One human line (ntfy, Slack, a command's ORCH_MESSAGE)."""
        line = f"{self.reason}: {self.object}: {self.message[:MAX_TEXT]}"
        if self.prompt and self.prompt not in self.message:
            return f"{line}\n{self.prompt[:MAX_TEXT]}"
        return line


def wants(notifier: Notifier, notice: Notice, labels: Mapping[str, str]) -> bool:
    """Whether `notifier` is for this notice: its reason and, if it has one, its selector."""
    if notice.reason not in notifier.spec.on:
        return False
    selector = tuple(Requirement(k, "=", v) for k, v in notifier.spec.selector.items())
    return selects(selector, labels)


@dataclass
class Throttle:
    """At most one notice per notifier, object and reason within the notifier's throttle."""

    sent: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def allow(self, notifier: Notifier, notice: Notice, now: float) -> bool:
        """True (and remembered) when this notice may go out now."""
        key = (notifier.metadata.name, notice.object, notice.reason)
        last = self.sent.get(key)
        if last is not None and now - last < notifier.spec.throttle:
            return False
        self.sent[key] = now
        return True


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
