"""Which events notify whom, what the notice says, throttling, and redacted secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.api.manifest import Notifier
from reconciler.core.notify import Notice, Throttle, notice_reason, wants
from reconciler.core.secrets import REDACTED, redacted


def notifier(**spec: object) -> Notifier:
    document = {
        "apiVersion": "orch/v1",
        "kind": "Notifier",
        "metadata": {"name": "phone"},
        "spec": {"on": ["AwaitingHuman"], "webhook": {"url": "http://127.0.0.1:1/h"}, **spec},
    }
    return Notifier.model_validate(document)


NOTICE = Notice("AwaitingHuman", "agent/x", "AwaitingHuman", "waiting", 0.0, "Proceed? [y/N]")


@pytest.mark.parametrize(
    ("obj", "reason", "expected"),
    [
        ("agent/x", "AwaitingHuman", "AwaitingHuman"),
        ("agent/x", "CrashLoopBackOff", "CrashLooping"),
        ("agent/x", "RateLimited", "CoolingDown"),
        ("agent/x", "DeliveryUnconfirmed", "DeliveryUnconfirmed"),
        ("run/r", "AwaitingApproval", "ApprovalNeeded"),
        ("run/r", "GateFailed", "RunFailed"),
        ("run/r", "Succeeded", "RunSucceeded"),
        ("agent/x", "Started", None),
        ("notifier/phone", "NotificationFailed", None),
    ],
)
def test_events_that_notify(obj: str, reason: str, expected: str | None) -> None:
    assert notice_reason(obj, reason) == expected


def test_the_body_carries_the_contract_fields() -> None:
    body = NOTICE.body()
    assert set(body) == {"reason", "object", "state", "message", "time", "prompt"}
    assert body["prompt"] == "Proceed? [y/N]" and body["time"] == "1970-01-01T00:00:00Z"


def test_selector_and_reasons_choose_the_notifier() -> None:
    assert wants(notifier(), NOTICE, {})
    assert not wants(notifier(on=["RunFailed"]), NOTICE, {})
    assert wants(notifier(selector={"role": "executor"}), NOTICE, {"role": "executor"})
    assert not wants(notifier(selector={"role": "executor"}), NOTICE, {"role": "architect"})


def test_throttle_is_per_object_and_reason() -> None:
    throttle, phone = Throttle(), notifier(throttle="5m")
    assert throttle.allow(phone, NOTICE, 0.0)
    assert not throttle.allow(phone, NOTICE, 60.0)
    other = Notice("AwaitingHuman", "agent/y", "AwaitingHuman", "", 0.0)
    assert throttle.allow(phone, other, 60.0)
    assert throttle.allow(phone, NOTICE, 301.0)


def test_exactly_one_transport() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        notifier(command="true")


def test_secrets_are_redacted() -> None:
    document = {
        "kind": "Notifier",
        "spec": {
            "webhook": {"url": "http://h", "headers": {"Authorization": "Bearer t0ken"}},
            "slack": {"webhookUrl": "https://hooks.slack.com/services/T0KEN"},
        },
    }
    shown = str(redacted(document))
    assert "t0ken" not in shown and "T0KEN" not in shown and REDACTED in shown
