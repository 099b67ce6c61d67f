"""Gates against real files and real commands in temporary workdirs."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import psutil
import pytest

from reconciler.adapters.gates import (
    MAX_OUTPUT_CHARS,
    evaluate_condition,
    evaluate_gate,
    missing_outputs,
)
from reconciler.adapters.manifest_files import load_files
from reconciler.api.manifest import Condition, FileMatches, Gate, Playbook
from tests.helpers import processes_with_env

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "manifests" / "playbooks" / "feature-implementation.yaml"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def check(workdir: Path, **fields: object) -> tuple[bool, str]:
    result = evaluate_gate(Gate.model_validate(fields), workdir, approved=False)
    assert not result.pending
    return result.passed, result.output


# --- fileExists ---------------------------------------------------------------------------------


def test_file_exists(workdir: Path) -> None:
    (workdir / "docs").mkdir()
    (workdir / "docs" / "brief.md").write_text("x")
    result = evaluate_gate(Gate(file_exists="docs/brief.md"), workdir, approved=False)
    assert (result.name, result.passed, result.output) == (
        "fileExists docs/brief.md",
        True,
        "docs/brief.md exists",
    )
    assert result.duration >= 0
    assert check(workdir, fileExists="docs") == (True, "docs exists")
    assert check(workdir, fileExists="docs/../docs/brief.md")[0]


def test_file_missing(workdir: Path) -> None:
    assert check(workdir, fileExists="plan.md") == (False, "plan.md does not exist")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.md", "leads outside the agent's workdir"),
        ("docs/../../outside.md", "leads outside the agent's workdir"),
        ("OUTSIDE", "is absolute"),
        ("escape.md", "resolves to"),  # a symlink to a file outside
        ("", "the path is empty"),
    ],
)
def test_paths_escaping_the_workdir_fail(workdir: Path, path: str, reason: str) -> None:
    outside = workdir.parent / "outside.md"
    outside.write_text("- a\n- b\n")
    (workdir / "docs").mkdir()
    (workdir / "escape.md").symlink_to(outside)
    path = str(outside) if path == "OUTSIDE" else path
    passed, output = check(workdir, fileExists=path)
    assert not passed
    assert output.startswith("refused: ") and reason in output
    passed, output = check(workdir, fileMatches={"path": path, "pattern": "^- ", "min": 1})
    assert not passed
    assert output.startswith("refused: ") and reason in output
    assert missing_outputs([path], workdir) == [path]


# --- fileMatches --------------------------------------------------------------------------------


def test_file_matches_counts_matching_lines(workdir: Path) -> None:
    (workdir / "brief.md").write_text("# Brief\n- one\ntext - not a bullet\n- two\n")
    gate = Gate(file_matches=FileMatches(path="brief.md", pattern="^- ", min=2))
    result = evaluate_gate(gate, workdir, approved=False)
    assert result.name == "fileMatches brief.md ^-  (min 2)"
    assert result.passed
    assert result.output == "found 2 lines matching `^- ` in brief.md, need 2"


def test_file_matches_too_few(workdir: Path) -> None:
    (workdir / "brief.md").write_text("- only one\n")
    assert check(workdir, fileMatches={"path": "brief.md", "pattern": "^- ", "min": 2}) == (
        False,
        "found 1 line matching `^- ` in brief.md, need 2",
    )


def test_file_matches_counts_lines_not_occurrences(workdir: Path) -> None:
    (workdir / "plan.md").write_text("Testing: test the tests\nError handling\n")
    passed, output = check(workdir, fileMatches={"path": "plan.md", "pattern": "(?i)test"})
    assert passed
    assert output.startswith("found 1 line ")
    assert check(workdir, fileMatches={"path": "plan.md", "pattern": "handling$"})[0]


def test_file_matches_missing_file_and_unreadable_path(workdir: Path) -> None:
    (workdir / "folder").mkdir()
    assert check(workdir, fileMatches={"path": "nope.md", "pattern": "x", "min": 0}) == (
        False,
        "nope.md does not exist",
    )
    passed, output = check(workdir, fileMatches={"path": "folder", "pattern": "x"})
    assert not passed
    assert output.startswith("cannot read folder: ")


def test_file_matches_min_zero_needs_only_the_file(workdir: Path) -> None:
    (workdir / "empty.md").write_text("")
    assert check(workdir, fileMatches={"path": "empty.md", "pattern": "x", "min": 0})[0]


# --- command ------------------------------------------------------------------------------------


def test_command_passes_on_exit_zero_in_the_workdir(workdir: Path) -> None:
    result = evaluate_gate(
        Gate(command='pwd; echo "gate=$ORCH_GATE"; cat'), workdir, approved=False
    )
    assert result.name == 'command pwd; echo "gate=$ORCH_GATE"; cat'
    assert result.passed
    assert result.output == f"{workdir}\ngate=1"  # and `cat` read an empty stdin


def test_command_failure_keeps_stdout_and_stderr_in_order(workdir: Path) -> None:
    passed, output = check(workdir, command="echo out; echo err >&2; echo more; exit 3")
    assert not passed
    assert output == "out\nerr\nmore\nexit status 3"


def test_command_without_output(workdir: Path) -> None:
    assert check(workdir, command="true") == (True, "")
    assert check(workdir, command="false") == (False, "exit status 1")


def test_long_output_keeps_its_end(workdir: Path) -> None:
    passed, output = check(workdir, command="head -c 10000 /dev/zero | tr '\\0' x; echo END")
    assert passed
    note, tail = output.split("\n", 1)
    assert note == f"[{10003 - MAX_OUTPUT_CHARS} earlier characters trimmed]"
    assert len(tail) == MAX_OUTPUT_CHARS
    assert tail.endswith("xxEND")


def test_long_command_gets_a_short_name(workdir: Path) -> None:
    command = "echo " + "word " * 40 + "\n  true"
    result = evaluate_gate(Gate(command=command), workdir, approved=False)
    assert result.passed
    assert "\n" not in result.name
    assert len(result.name) <= len("command ") + 60
    assert result.name.endswith("…")


def test_command_in_a_missing_workdir_fails(tmp_path: Path) -> None:
    passed, output = check(tmp_path / "gone", command="true")
    assert not passed
    assert output.startswith("cannot run /bin/sh in ")


@pytest.mark.parametrize("spawn", ["sleep 100 &", "setsid sleep 100 &"])
def test_timeout_ends_every_process_the_command_started(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, spawn: str
) -> None:
    """A child in the command's group, or one that started its own session, is ended too."""
    marker = uuid.uuid4().hex
    monkeypatch.setenv("GATE_TEST_MARKER", marker)
    command = f'{spawn} echo "child $!"; sleep 100'
    started = time.monotonic()
    result = evaluate_gate(Gate(command=command, timeout=0.5), workdir, approved=False)
    assert time.monotonic() - started < 10
    assert not result.passed
    child = re.fullmatch(r"child (\d+)\ntimed out after 500ms", result.output)
    assert child, result.output
    assert not _running_sleep(int(child[1]))
    left = [p for p in processes_with_env("GATE_TEST_MARKER", marker) if p.pid != os.getpid()]
    assert left == []


def _running_sleep(pid: int) -> bool:
    """True while `pid` is a live `sleep` (a zombie waiting for init to reap it is gone)."""
    try:
        proc = psutil.Process(pid)
        return proc.name() == "sleep" and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- approval, when, outputs --------------------------------------------------------------------


def test_approval_is_pending_until_approved(workdir: Path) -> None:
    gate = Gate(approval="human")
    waiting = evaluate_gate(gate, workdir, approved=False)
    assert (waiting.name, waiting.passed, waiting.pending) == ("approval human", False, True)
    assert "orch approve" in waiting.output
    approved = evaluate_gate(gate, workdir, approved=True)
    assert (approved.passed, approved.pending, approved.output) == (True, False, "approved")


def test_when_conditions(workdir: Path) -> None:
    absent = Condition(command="test ! -f research-brief.md")
    assert evaluate_condition(absent, workdir).passed
    (workdir / "research-brief.md").write_text("- a\n")
    assert not evaluate_condition(absent, workdir).passed
    assert evaluate_condition(Condition(file_exists="research-brief.md"), workdir).passed
    matches = Condition(file_matches=FileMatches(path="research-brief.md", pattern="needs-x"))
    result = evaluate_condition(matches, workdir)
    assert not result.passed
    assert result.name == "fileMatches research-brief.md needs-x (min 1)"


def test_missing_outputs(workdir: Path) -> None:
    (workdir / "plan.md").write_text("x")
    outputs = ["plan.md", "qa-report.md", "/etc/hostname", "plan.md"]
    assert missing_outputs(outputs, workdir) == ["qa-report.md", "/etc/hostname"]
    assert missing_outputs([], workdir) == []


# --- the seed playbook's own gate commands ------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "passes"),
    [
        ("# QA\n## Findings\n- none\n", True),
        ("## Findings\n- P2: slow\n- P3: naming\nNo P0 or P1 issues.\n", True),
        ("## Findings\n- FIXED P1: crash on empty input\n- FIXED P0: leak\n", True),
        ("## Findings\n- P1: crash on empty input\n", False),
        ("## Findings\n* P0 data loss\n", False),
        ("## Findings\n  - **P1**: unchecked path\n", False),
        ("## Findings\n- [P0] injection\n", False),
        ("## Findings\n- P10: not a priority\n", True),
    ],
)
def test_seed_qa_gates_refuse_open_p0_and_p1_findings(
    workdir: Path, report: str, passes: bool
) -> None:
    [declared] = load_files([SEED])
    assert isinstance(declared.obj, Playbook)
    [qa] = [step for step in declared.obj.spec.steps if step.name == "qa"]
    gates = [gate for gate in qa.gates if gate.command != "make test"]
    assert [evaluate_gate(g, workdir, approved=False).passed for g in gates] == [False] * 3
    (workdir / "qa-report.md").write_text(report)
    results = [evaluate_gate(g, workdir, approved=False) for g in gates]
    assert all(r.passed for r in results) is passes, results


def test_missing_outputs_counts_leftovers_older_than_the_attempt(workdir: Path) -> None:
    (workdir / "plan.md").write_text("old\n")
    written = (workdir / "plan.md").stat().st_mtime
    assert missing_outputs(["plan.md"], workdir, since=written) == []
    assert missing_outputs(["plan.md"], workdir, since=written + 1) == ["plan.md"]
