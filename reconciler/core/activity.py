"""What an agent's activity means for supervision.

Pure. The activity itself is weighed once per pass from the agent's own signals and its screen's
verdict (`core.signal_plan.publish_activity`, with `core.signals.weigh`); this module says what
an activity implies for the health machine.
"""

from __future__ import annotations

from reconciler.api.activity import Activity


def counts_as_busy(activity: Activity) -> bool:
    """Whether quiet means stuck: a busy agent, or one whose screen cannot tell (a generic
    program falls back to the screen hash, as before activity existed)."""
    return activity in (Activity.BUSY, Activity.UNKNOWN)
