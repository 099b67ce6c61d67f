"""Playbook runs end to end: steps handed to fake agents, gates, rework, approvals, checkpoints."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil
import pytest

from tests import helpers
from tests.conftest import Orch
from tests.helpers import wait_until

pytestmark = pytest.mark.tmux


def setup(orch: Orch, steps: str, params: str = "", agents: tuple[str, ...] = ("worker",)) -> str:
    docs = [helpers.fake_agent_doc(orch.workdir, name) for name in agents]
    docs.append(f"""\
apiVersion: orch/v1
kind: Playbook
metadata:
  name: flow
spec:
{params}  steps:
{steps}""")
    manifest = orch.workdir / "team.yaml"
    manifest.write_text("---\n".join(docs))
    orch.run("apply", "-f", str(manifest), "--wait")
    return str(manifest)


def start(orch: Orch, *params: str) -> str:
    out = orch.run("run", "flow", *[f"--param={p}" for p in params]).stdout.strip()
    assert out.startswith("run/") and out.endswith(" created")
    return out.split()[0].removeprefix("run/")


def run_status(orch: Orch, name: str) -> dict[str, Any]:
    item = orch.json("get", "runs", name)  # one name: the object itself (kubectl)
    return dict(item["status"])


def in_state(orch: Orch, name: str, state: str) -> dict[str, Any] | None:
    status = run_status(orch, name)
    return status if status["state"] == state else None


def reaches(orch: Orch, name: str, state: str) -> dict[str, Any]:
    """The run's status once it is in `state` (the test fails after 30 s)."""
    return wait_until(lambda: in_state(orch, name, state), timeout=30, what=state)


def received(orch: Orch, agent: str = "worker") -> list[str]:
    return helpers.received(helpers.record_of(orch.workdir, agent))


def test_steps_run_in_order_and_the_run_succeeds(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: one
      agent: worker
      prompt: "write a.txt first"
      outputs: [a.txt]
      gates: [{fileExists: a.txt}]
    - name: two
      agent: worker
      prompt: "write b.txt ${word}"
      outputs: [b.txt]
      gates: [{fileMatches: {path: b.txt, pattern: "^bird", min: 1}}]
""",
        params="  params: {word: {required: true}}\n",
    )
    name = start(orch, "word=bird")
    done = reaches(orch, name, "Succeeded")
    assert [s["phase"] for s in done["steps"]] == ["Passed", "Passed"]
    prompts = received(orch)
    assert len(prompts) == 2
    assert prompts[1].startswith("write b.txt bird") and f"orch step done {name}" in prompts[1]
    text = orch.run("describe", "run", name).stdout
    assert "fileMatches" in text and "passed" in text


def test_failed_gate_asks_for_rework_then_passes(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: draft
      agent: worker
      prompt: "write c.txt bad"
      outputs: [c.txt]
      gates: [{fileMatches: {path: c.txt, pattern: "^good", min: 1}}]
      maxAttempts: 3
""",
    )
    name = start(orch)
    wait_until(lambda: run_status(orch, name)["attempt"] == 2, timeout=30, what="attempt 2")
    rework = wait_until(lambda: received(orch)[1:], what="the rework message")[0]
    assert "fileMatches" in rework and "write c.txt bad" in rework
    (orch.workdir / "c.txt").write_text("good work\n")
    done = reaches(orch, name, "Succeeded")
    assert done["steps"][0]["attempt"] == 2
    gates = done["steps"][0]["gates"]
    assert [(g["attempt"], g["passed"]) for g in gates] == [(2, True)]  # only attempt 2 current
    earlier = done["steps"][0]["earlierGates"]
    assert [(g["attempt"], g["passed"]) for g in earlier] == [(1, False)]
    text = orch.run("describe", "run", name).stdout
    gates_part = text.split("Gates:")[1].split("Events:")[0]
    assert gates_part.index("draft attempt 2 (current):") < gates_part.index("draft attempt 1:")
    assert "FAILED" in gates_part.split("draft attempt 1:")[1]
    assert "FAILED" not in gates_part.split("draft attempt 1:")[0]


def test_run_fails_after_max_attempts(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: draft
      agent: worker
      prompt: "write d.txt bad"
      outputs: [d.txt]
      gates: [{command: "grep -q good d.txt"}]
      maxAttempts: 1
""",
    )
    name = start(orch)
    failed = reaches(orch, name, "Failed")
    assert "grep -q good d.txt" in failed["message"]


def test_approval_gate_waits_for_orch_approve(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: deploy
      agent: worker
      prompt: "write ship.txt ready"
      outputs: [ship.txt]
      gates: [{fileExists: ship.txt}, {approval: human}]
""",
    )
    name = start(orch)
    waiting = reaches(orch, name, "AwaitingHuman")
    assert "orch approve" in waiting["message"]
    out = orch.run("approve", name)
    assert "approved" in out.stdout
    reaches(orch, name, "Succeeded")
    again = orch.run("approve", name, check=False)
    assert again.returncode == 1


def test_when_false_skips_the_step_with_a_reason(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: optional
      agent: worker
      prompt: "write never.txt x"
      when: {fileExists: please-run.txt}
    - name: last
      agent: worker
      prompt: "write e.txt done"
      outputs: [e.txt]
""",
    )
    name = start(orch)
    done = reaches(orch, name, "Succeeded")
    assert done["steps"][0]["phase"] == "Skipped" and "please-run.txt" in done["steps"][0]["reason"]
    assert len(received(orch)) == 1


def test_step_timeout_fails_the_run(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: slow
      agent: worker
      prompt: "say thinking"
      outputs: [never.txt]
      timeout: 1s
      maxAttempts: 1
""",
    )
    name = start(orch)
    failed = reaches(orch, name, "Failed")
    assert "timeout" in failed["message"]


def test_step_done_signal_completes_a_step_without_outputs(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: talk
      agent: worker
      prompt: "say hello"
""",
    )
    name = start(orch)
    wait_until(lambda: received(orch), what="the prompt")
    refused = orch.run("step", "done", "no-such-run", check=False)
    assert refused.returncode == 2
    orch.run("step", "done", name)
    reaches(orch, name, "Succeeded")


def test_two_runs_share_one_agent_one_step_at_a_time(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: work
      agent: worker
      prompt: "say working"
""",
    )
    first, second = start(orch), start(orch)
    wait_until(lambda: len(received(orch)) == 1, what="the first prompt")
    assert run_status(orch, second)["steps"][0]["phase"] == "Pending"
    assert "busy" in run_status(orch, second)["message"]
    orch.run("step", "done", first)
    wait_until(lambda: len(received(orch)) == 2, what="the second prompt")
    assert f"orch step done {second}" in received(orch)[1]
    orch.run("step", "done", second)
    wait_until(lambda: in_state(orch, second, "Succeeded"), timeout=30, what="Succeeded")


def test_run_resumes_after_controller_kill_without_sending_twice(orch: Orch) -> None:
    setup(
        orch,
        """\
    - name: one
      agent: worker
      prompt: "say step one"
      outputs: [f.txt]
""",
    )
    name = start(orch)
    wait_until(lambda: received(orch), what="the prompt")
    controller = int((orch.state_dir / "controller.pid").read_text())
    os.kill(controller, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(controller), what="controller gone")
    orch.run("apply", "-f", str(orch.workdir / "team.yaml"))  # a new controller
    (orch.workdir / "f.txt").write_text("done\n")
    reaches(orch, name, "Succeeded")
    assert len(received(orch)) == 1


def test_bad_parameters_are_refused_before_anything_starts(orch: Orch) -> None:
    setup(
        orch,
        '    - {name: s, agent: worker, prompt: "say ${x}"}\n',
        params="  params: {x: {required: true}}\n",
    )
    missing = orch.run("run", "flow", check=False)
    assert missing.returncode == 1 and "missing parameter x" in missing.stderr
    unknown = orch.run("run", "flow", "--param", "x=1", "--param", "y=2", check=False)
    assert unknown.returncode == 1 and "unknown parameter y" in unknown.stderr
    assert orch.run("run", "nope", check=False).returncode == 2
    assert orch.json("get", "runs")["items"] == []


def test_delete_run_cancels_it(orch: Orch) -> None:
    setup(orch, '    - {name: s, agent: worker, prompt: "say hi", outputs: [g.txt]}\n')
    name = start(orch)
    out = orch.run("delete", "run", name)
    assert out.stdout.strip() == f"run/{name} deleted"
    assert orch.json("get", "runs")["items"] == []
    assert orch.run("get", "runs", name, check=False).returncode == 2
