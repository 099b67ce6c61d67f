"""`step done` and approvals count only for the step and attempt they name."""

from __future__ import annotations

import pytest

from reconciler.adapters.store_rows import RunSignal
from reconciler.controller.runner import sort_signals
from reconciler.core.runs import StepPhase, StepStatus


def signal(kind: str, step: str = "build", attempt: int = 1) -> RunSignal:
    return RunSignal(1, "flow-1", kind, step, 0.0, attempt)


@pytest.mark.parametrize(
    ("given", "phase", "expected"),
    [
        (signal("done"), StepPhase.WORKING, "done"),
        (signal("done", attempt=0), StepPhase.WORKING, "stale"),
        (signal("done", attempt=2), StepPhase.WORKING, "stale"),  # no such attempt yet
        (signal("done", step="recon"), StepPhase.WORKING, "stale"),  # an earlier step's
        (signal("done"), StepPhase.CHECKING, "stale"),  # said again after the step left Working
        (signal("approve"), StepPhase.AWAITING_APPROVAL, "approve"),
        (signal("approve", attempt=2), StepPhase.AWAITING_APPROVAL, "stale"),
        (signal("approve"), StepPhase.CHECKING, "kept"),  # its gate is being checked again
    ],
)
def test_signal_sorting(given: RunSignal, phase: StepPhase, expected: str) -> None:
    current = StepStatus("build", "worker", phase=phase, attempt=1)
    done, approvals, stale = sort_signals([given], current)
    found = "done" if done else "approve" if approvals else "stale" if stale else "kept"
    assert found == expected


def test_every_signal_is_stale_once_the_run_is_finished() -> None:
    assert sort_signals([signal("done"), signal("approve")], None)[2] != []
