"""A limit Gemini CLI reports only in its debug log: read from the real log, cooled down once per
failed attempt, ended without a resume text (the CLI retries by itself)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.adapters.cli_log import NO_FILE, LogPosition, read_appended
from reconciler.adapters.paths import StatePaths
from reconciler.api.actions import SendKeys
from reconciler.api.status import AgentRecord, AgentState
from reconciler.controller.cli_logs import CliLogReader
from reconciler.core.agent_plan import AgentPlan, DesiredAgent, PlanContext
from reconciler.core.cli_log import RETRY_OUTCOME_SECONDS, LogLimit, limit_in_log
from reconciler.core.planner import plan_agent
from reconciler.core.signal_wiring import GEMINI_DEBUG_LOG, wire
from tests.helpers import T0, desired_agent, on_screen
from tests.helpers import running_record as running

FIXTURE = Path(__file__).parent.parent / "fixtures" / "signals" / "gemini" / "debug-log-429.txt"
LOG = FIXTURE.read_text().splitlines()
NOW = datetime.fromtimestamp(T0, UTC)
IDLE = " >   Type your message or @path/to/file\n"
BUSY = " ⠧ Thinking... (esc to cancel, 3s)\n >   Type your message or @path/to/file\n"
S = AgentState


def gemini(**spec: object) -> DesiredAgent:
    return desired_agent(command="gemini", profile="gemini", **spec)


def first_attempt() -> list[str]:
    """The real log up to and including the first failed attempt."""
    end = next(i for i, line in enumerate(LOG) if "Attempt 2 failed" in line)
    return LOG[:end]


def test_the_real_429_entry_is_a_limit_until_the_cli_has_retried() -> None:
    limit = limit_in_log(first_attempt(), gemini().agent.spec, NOW)
    assert limit is not None and limit.retrying
    assert "Quota exceeded for metric" in limit.text or "Attempt 1 failed" in limit.text
    # its own retry after 28723 ms (later than the server's 27.4 s), and time for its outcome
    assert limit.until == pytest.approx(T0 + 28.723 + RETRY_OUTCOME_SECONDS)


def test_the_log_without_a_limit_and_debug_lines_quoting_one_are_no_limit() -> None:
    spec = gemini().agent.spec
    assert limit_in_log(LOG[:40], spec, NOW) is None
    quoted = "[2026-11-30T14:12:31.000Z] [DEBUG] prompt: why does Quota exceeded for metric show?"
    assert limit_in_log([quoted, "Please retry in 3s."], spec, NOW) is None


def test_hostile_lines_are_clipped_and_never_raise() -> None:
    spec = gemini().agent.spec
    header = "[2026-11-30T14:12:31.000Z] [WARN] "
    long = header + "x" * 5_000_000 + " Quota exceeded for metric"
    assert limit_in_log([long], spec, NOW) is None  # past the clipped part
    garbage = [header + "\x00\udcff RESOURCE_EXHAUSTED retry in 99999999999 days", "]]]["]
    limit = limit_in_log(garbage, spec, NOW)
    assert limit is not None and limit.until is None and not limit.retrying


def test_wiring_points_gemini_at_a_debug_log_in_its_dir_with_or_without_hooks(
    tmp_path: Path,
) -> None:
    log = f"{tmp_path}/{GEMINI_DEBUG_LOG}"
    for ok in (False, True):
        wiring = wire("gemini", "dev", ("orch",), "/state", str(tmp_path), system_settings_ok=ok)
        assert wiring.env["GEMINI_DEBUG_LOG_FILE"] == log and wiring.logs == (log,)


def test_reading_is_incremental_from_the_end_at_first_sight(tmp_path: Path) -> None:
    path = tmp_path / GEMINI_DEBUG_LOG
    assert read_appended(path, None) == ([], NO_FILE)
    path.write_text("old\n")
    lines, position = read_appended(path, None)  # a controller restart: history is not news
    assert lines == []
    with open(path, "a") as file:
        file.write("new\nhalf")
    lines, position = read_appended(path, position)
    assert lines == ["new"]
    with open(path, "a") as file:
        file.write(" done\n")
    assert read_appended(path, position)[0] == ["half done"]


def test_a_log_that_appears_or_is_replaced_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / GEMINI_DEBUG_LOG
    lines, position = read_appended(path, None)
    path.write_text("first\n")
    lines, position = read_appended(path, position)
    assert lines == ["first"]
    path.unlink()  # a new launch: the caller passes NO_FILE (the inode number may be the same)
    path.write_text("again\n")
    assert read_appended(path, NO_FILE)[0] == ["again"]
    assert read_appended(path, LogPosition(position.inode + 1, 0))[0] == ["again"]
    assert read_appended(path, LogPosition(position.inode, 10_000))[0] == ["again"]  # truncated


def test_a_large_log_is_emptied_and_a_symlink_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciler.adapters.cli_log.MAX_LOG_BYTES", 10)
    path = tmp_path / GEMINI_DEBUG_LOG
    path.write_text("a line longer than ten bytes without its end")
    position = read_appended(path, None)[1]
    assert read_appended(path, position)[1].offset == 0 and path.stat().st_size == 0
    victim = tmp_path / "victim"
    victim.write_text("x" * 100 + "\n")
    path.unlink()
    os.symlink(victim, path)
    assert read_appended(path, position) == ([], NO_FILE)
    assert victim.stat().st_size == 101


def plan(
    desired: DesiredAgent,
    record: AgentRecord,
    now: float,
    screen: str = IDLE,
    limit: LogLimit | None = None,
) -> tuple[AgentRecord, AgentPlan]:
    """One planning step with `limit` read from the CLI's log this pass; the new record too."""
    observed = replace(on_screen(screen, desired, now), log_limit=limit)
    got = plan_agent("executor", desired, observed, record, PlanContext(now, UTC))
    assert got.record is not None
    return got.record, got


def test_a_limit_in_the_log_cools_down_until_the_cli_retried_then_sends_no_resume() -> None:
    desired = gemini(rateLimit={"cooldown": "20s", "resume": "continue"})
    limit = limit_in_log(first_attempt(), desired.agent.spec, NOW)
    record, _ = plan(desired, running(desired), T0, BUSY, limit)
    assert record.state is S.COOLING_DOWN and record.cooldown_retrying
    assert limit is not None and record.cooldown_until == limit.until
    assert "the CLI's own retry" in record.message
    # the retry failed too: a new entry in the log extends the cooldown
    later = limit_in_log(first_attempt(), desired.agent.spec, datetime.fromtimestamp(T0 + 30, UTC))
    record, again = plan(desired, record, T0 + 30, BUSY, later)
    assert record.state is S.COOLING_DOWN
    assert later is not None and later.until is not None
    assert record.cooldown_until == later.until
    assert [e.reason for e in again.events] == ["RateLimitedAgain"]
    record, over = plan(desired, record, later.until + 1, IDLE)
    assert record.state is S.RUNNING and not record.cooldown_retrying
    assert not [a for a in over.actions if isinstance(a, SendKeys)]  # no second request
    assert "no resume" in record.message


def test_a_limit_in_the_log_naming_no_time_uses_the_spec_cooldown_and_resumes() -> None:
    desired = gemini(rateLimit={"cooldown": "20s", "resume": "go on"})
    limit = LogLimit("RESOURCE_EXHAUSTED", None, False)
    record, _ = plan(desired, running(desired), T0, BUSY, limit)
    assert record.state is S.COOLING_DOWN and record.cooldown_until == T0 + 20
    _, over = plan(desired, record, T0 + 21, IDLE)
    assert over.actions == (SendKeys("executor", literal="go on"),)


def test_the_reader_hands_each_new_limit_once_and_reads_a_new_launch_from_its_start(
    tmp_path: Path,
) -> None:
    paths = StatePaths(tmp_path)
    reader = CliLogReader(paths)
    desired = {"executor": gemini()}
    log = paths.agent_dir("executor") / GEMINI_DEBUG_LOG
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(LOG[:40]) + "\n")
    assert reader.read(desired, {"executor": "L1"}, T0) == {}  # first sight: from the end
    with open(log, "a") as file:
        file.write("\n".join(first_attempt()[40:]) + "\n")
    assert set(reader.read(desired, {"executor": "L1"}, T0 + 1)) == {"executor"}
    assert reader.read(desired, {"executor": "L1"}, T0 + 2) == {}  # once
    log.unlink()  # the executor, at the next launch
    log.write_text("\n".join(first_attempt()) + "\n")
    assert set(reader.read(desired, {"executor": "L2"}, T0 + 3)) == {"executor"}
    off = {"executor": gemini(signals="off")}
    with open(log, "a") as file:
        file.write("\n".join(first_attempt()) + "\n")
    assert reader.read(off, {"executor": "L2"}, T0 + 4) == {}
