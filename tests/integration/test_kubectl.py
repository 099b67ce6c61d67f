"""kubectl conventions: selectors, single objects, jsonpath, diff exit codes, folders, kind/name,
completion, version, bare `orch`."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT
from tests.integration.test_core import agent_doc, write_manifest

pytestmark = pytest.mark.tmux


def labelled(name: str, role: str) -> str:
    return f"""\
apiVersion: orch/v1
kind: Agent
metadata:
  name: {name}
  labels: {{role: {role}}}
spec:
  command: {sys.executable} {FAKE_AGENT} --name {name}
  startup: {{after: 300ms}}
"""


@pytest.fixture
def team(orch: Orch) -> Orch:
    folder = orch.workdir / "team"
    (folder / "more").mkdir(parents=True)
    (folder / "a.yaml").write_text(labelled("architect", "architect"))
    (folder / "b.yml").write_text(labelled("executor", "executor"))
    (folder / "more" / "c.yaml").write_text(labelled("reviewer", "executor"))
    (folder / "notes.txt").write_text("not a manifest")
    out = orch.run("apply", "-f", str(folder), "-R")
    assert sorted(out.stdout.split()) == sorted(
        ["agent/architect", "created", "agent/executor", "created", "agent/reviewer", "created"]
    )
    return orch


def test_apply_a_folder_without_r_takes_only_its_own_files(orch: Orch) -> None:
    folder = orch.workdir / "team"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.yaml").write_text(labelled("architect", "architect"))
    (folder / "sub" / "c.yaml").write_text(labelled("reviewer", "executor"))
    out = orch.run("apply", "-f", str(folder))
    assert out.stdout.splitlines() == ["agent/architect created"]


def test_selectors_single_objects_and_jsonpath(team: Orch) -> None:
    names = team.run("get", "agents", "-l", "role=executor", "-o", "name").stdout.split()
    assert names == ["agent/executor", "agent/reviewer"]
    table = team.run("get", "agents", "-l", "role!=executor").stdout
    assert "architect" in table and "executor" not in table
    item = json.loads(team.run("get", "agent", "executor", "-o", "json").stdout)
    assert item["kind"] == "Agent" and item["metadata"]["name"] == "executor"
    assert "kind: Agent" in team.run("get", "agent", "executor", "-o", "yaml").stdout
    path = team.run("get", "agents", "-o", "jsonpath={.items[*].metadata.name}").stdout
    assert path.split() == ["architect", "executor", "reviewer"]
    one = team.run("get", "agent", "architect", "-o", "jsonpath={.metadata.labels.role}")
    assert one.stdout.strip() == "architect"
    bad = team.run("get", "agents", "-l", "=x", check=False)
    assert bad.returncode == 1 and "-l" in bad.stderr


def test_diff_exit_codes_and_one_field_order(team: Orch) -> None:
    folder = team.workdir / "team"
    same = team.run("diff", "-f", str(folder), "-R", check=False)
    assert same.returncode == 0 and same.stdout == ""
    edited = folder / "edited.yaml"  # another file than the owner: a conflict, as apply says
    edited.write_text(labelled("executor", "executor") + "  restartPolicy: Never\n")
    conflict = team.run("diff", "-f", str(edited), check=False)
    assert conflict.returncode == 1 and "b.yml" in conflict.stderr
    team.run("controller", "stop")  # so that editing the owner is not applied live
    (folder / "b.yml").write_text(labelled("executor", "executor") + "  restartPolicy: Never\n")
    changed = team.run("diff", "-f", str(folder / "b.yml"), check=False)
    assert changed.returncode == 1
    body = [line for line in changed.stdout.splitlines() if line[:1] in "+-"]
    body = [line for line in body if not line.startswith(("---", "+++"))]
    assert body == ["-  restartPolicy: Always", "+  restartPolicy: Never"], changed.stdout


def test_delete_several_in_the_kind_name_form(team: Orch) -> None:
    out = team.run("delete", "agent/architect", "agent/reviewer")
    assert out.stdout.splitlines() == ["agent/architect deleted", "agent/reviewer deleted"]
    assert set(team.agents()) == {"executor"}
    missing = team.run("delete", "agent", "nope", check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_completion_offers_agent_names(team: Orch) -> None:
    assert "_orch_completion" in team.run("completion", "bash").stdout
    assert "compdef" in team.run("completion", "zsh").stdout
    assert "complete" in team.run("completion", "fish").stdout
    env = {**team.env, "_ORCH_COMPLETE": "bash_complete", "COMP_WORDS": "orch describe agent ex"}
    env["COMP_CWORD"] = "3"
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", "from reconciler.cli.main import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        cwd=team.workdir,
        check=False,
    )
    assert "executor" in proc.stdout, proc.stderr


def test_version_and_bare_orch(orch: Orch) -> None:
    out = orch.run("version").stdout
    assert out.startswith("orch ") and "tmux " in out and "python " in out
    bare = orch.run()
    assert bare.returncode == 0 and "Usage:" in bare.stdout


def test_diff_before_any_apply_shows_creations_and_makes_no_state_dir(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    first = orch.run("diff", "-f", str(path), check=False)
    assert first.returncode == 1 and "agent/executor created" in first.stdout
    assert not orch.state_dir.exists()
