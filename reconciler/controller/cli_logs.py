"""Reading, each pass, the limits that agent CLIs report only in their own debug logs.

Gemini CLI shows nothing of a per-minute 429 (see core.cli_log): for gemini agents with
`spec.signals: auto` the executor points `GEMINI_DEBUG_LOG_FILE` at a file in the agent's dir,
emptied at each launch, and this reader hands the planner the limits in the lines added since
the last pass (adapters.cli_log bounds the reading). Offsets live in memory, with the launch
they belong to: a new launch's log is read from its start (a file's inode number alone cannot
tell, it is reused at once), and a controller that restarts reads each log from its end, so a
line is never counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.adapters.cli_log import NO_FILE, LogPosition, read_appended
from reconciler.adapters.paths import StatePaths
from reconciler.core.agent_plan import DesiredAgent
from reconciler.core.cli_log import LogLimit, limit_in_log
from reconciler.core.signal_wiring import GEMINI_DEBUG_LOG

log = logging.getLogger(__name__)


@dataclass
class CliLogReader:
    """The new limits in the agents' CLI debug logs, per agent, once each."""

    paths: StatePaths
    _positions: dict[str, tuple[str, LogPosition]] = field(default_factory=dict)

    def read(
        self, desired: Mapping[str, DesiredAgent], launches: Mapping[str, str], now: float
    ) -> dict[str, LogLimit]:
        """Limits in what each gemini agent's debug log gained since the last call
        (`launches`: each agent's recorded launch id)."""
        found: dict[str, LogLimit] = {}
        for name in [n for n in self._positions if n not in desired]:
            del self._positions[name]
        when = datetime.fromtimestamp(now).astimezone()
        for name, agent in desired.items():
            spec = agent.agent.spec
            if spec.profile != "gemini" or spec.signals != "auto":
                continue
            path = self.paths.agent_dir(name) / GEMINI_DEBUG_LOG
            launch = launches.get(name, "")
            known = self._positions.get(name)
            position = None if known is None else known[1] if known[0] == launch else NO_FILE
            lines, moved = read_appended(path, position)
            self._positions[name] = (launch, moved)
            limit = limit_in_log(lines, spec, when) if lines else None
            if limit is not None:
                log.info("agent/%s: limit in its CLI's log: %s", name, limit.text)
                found[name] = limit
        return found
