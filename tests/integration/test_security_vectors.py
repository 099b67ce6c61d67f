"""Issue 11's vectors replayed as the attacker ran them: through the CLI, the real controller and
real tmux, where test_security.py proves the same protection one layer down (the adapter).

Each test is one line of the issue's "Why" (docs/security-audit.md maps every line to its tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import Orch
from tests.helpers import (
    FAKE_AGENT,
    agent_yaml,
    apply_agent,
    kill_test_processes,
    received,
    wait_until,
)
from tests.integration.test_guards import (
    apply_guarded,
    events,
    git,
    repo,  # noqa: F401  (the fixture, by usefixtures)
)
from tests.integration.test_health import type_in

pytestmark = pytest.mark.tmux

#: The limit line whose reset time (year 9999 in Etc/GMT+12) overflowed datetime arithmetic.
YEAR_9999 = "You've hit your usage limit · resets Dec 31, 9999 11:59pm (Etc/GMT+12)"


def test_a_state_dir_spelled_as_a_tmux_format_runs_nothing_and_keeps_its_log(
    orch: Orch, tmp_path: Path
) -> None:
    """`st#(touch …)x`: the state dir reaches tmux inside the pipe-pane command (the pane log)."""
    pwned = tmp_path / "pwned"
    # The slashes of the command's path are folders: the state dir's path holds the whole
    # `#(touch /…/pwned)` text, as a directory another user named would.
    state_dir = Path(f"{tmp_path}/st#(touch {pwned})x#{{host}}y")
    state_dir.parent.mkdir(parents=True)
    orch.env["ORCH_STATE_DIR"] = str(state_dir)
    orch.state_dir = state_dir
    try:
        apply_agent(orch, "")
        type_in(orch, "executor", "say marker-in-the-log")
        log = state_dir / "agents" / "executor" / "pane.log"
        wait_until(
            lambda: log.exists() and "marker-in-the-log" in log.read_text(errors="replace"),
            what="the pane's output in the state dir's log",
        )
        assert not pwned.exists()
        assert "marker-in-the-log" in orch.run("logs", "executor").stdout
    finally:  # the fixture cleans up after its own state dir, not this one
        kill_test_processes(state_dir, orch.socket)


def test_an_answer_ending_in_a_semicolon_is_typed_whole(orch: Orch) -> None:
    """`answer: "yes;"` was sent as `yes`: tmux took the final `;` for a command separator."""
    record = apply_agent(
        orch, "  prompts:\n    - match: 'Do you want to proceed'\n      answer: 'yes;'\n"
    )
    type_in(orch, "executor", "ask")
    wait_until(lambda: received(record)[-1:] == ["yes;"], what="the answer typed whole")


def test_a_message_ending_in_a_semicolon_is_delivered_whole(orch: Orch) -> None:
    record = apply_agent(orch, "")
    orch.run("send", "executor", "run-shell 'touch pwned' ;")
    wait_until(lambda: received(record)[-1:] == ["run-shell 'touch pwned' ;"], what="the message")
    assert not (orch.workdir / "pwned").exists()


def test_a_limit_line_of_year_9999_does_not_stop_supervision(orch: Orch) -> None:
    """The reset time raised OverflowError in every pass; a killed bystander stayed dead."""
    apply_agent(orch, "  profile: claude\n", name="limited")
    apply_agent(orch, "", name="bystander")
    before = orch.agents()["bystander"]["status"]["restarts"]
    type_in(orch, "limited", f"limit {YEAR_9999}")
    wait_until(
        lambda: "9999" in orch.tmux("capture-pane", "-p", "-t", "=limited:").stdout,
        what="the limit line on screen",
    )
    type_in(orch, "bystander", "crash 1")
    wait_until(
        lambda: orch.agents()["bystander"]["status"]["restarts"] > before,
        timeout=20,
        what="the crashed bystander restarted",
    )
    controller_log = (orch.state_dir / "controller.log").read_text()
    assert "OverflowError" not in controller_log and "Traceback" not in controller_log


@pytest.mark.usefixtures("repo")
def test_a_skip_worktree_edit_to_a_protected_file_is_restored(orch: Orch) -> None:
    tree = orch.workdir / "repo"
    apply_guarded(orch, tree, "restore")
    git(tree, "update-index", "--skip-worktree", "tests/test_a.py")
    (tree / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore event")
    assert (tree / "tests" / "test_a.py").read_text() == "def test_a():\n    assert True\n"


@pytest.mark.usefixtures("repo")
def test_a_protected_file_hidden_by_info_exclude_is_removed(orch: Orch) -> None:
    tree = orch.workdir / "repo"
    apply_guarded(orch, tree, "restore")
    (tree / ".git" / "info").mkdir(exist_ok=True)
    (tree / ".git" / "info" / "exclude").write_text("tests/\n")
    (tree / "tests" / "test_new.py").write_text("def test_new():\n    assert True\n")
    wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore event")
    wait_until(lambda: not (tree / "tests" / "test_new.py").exists(), what="the new file removed")


def test_a_key_list_carrying_run_shell_is_refused_at_apply_and_runs_nothing(orch: Orch) -> None:
    pwned = orch.workdir / "pwned3"
    manifest = orch.workdir / "keys.yaml"
    prompts = f'  prompts: [{{match: "Do you want", keys: ["y;", "run-shell", "touch {pwned}"]}}]\n'
    manifest.write_text(agent_yaml("keys", f"{sys.executable} {FAKE_AGENT}", prompts))
    result = orch.run("apply", "-f", str(manifest), check=False)
    assert result.returncode == 1 and "spec.prompts[0].keys[0]" in result.stderr
    assert not pwned.exists()
