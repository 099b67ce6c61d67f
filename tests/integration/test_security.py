"""Security: hostile names, paths, values, keys, messages, screens and other local users.

Each test is one vector of issue 11 ("Why"), written so it failed before the fix: text that tmux
would interpret, secrets on command lines, leaking environments, planted state dirs, guards an
agent can walk around. The property tests drive hostile strings through every path into real
tmux (a private socket per test) and check that tmux received them literally.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.adapters.agentlog import log_path, pipe_command
from reconciler.adapters.tmux import Tmux
from reconciler.api.errors import InvalidInput
from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, wait_until
from tests.integration.test_playbooks import in_state, setup, start

#: Characters tmux's command and format parsers treat specially, and shell metacharacters.
SPECIALS = "#{}()[];\\$~'\"`%,:=!&|<> *?\t"
hostile_text = st.text(
    alphabet=st.sampled_from(SPECIALS) | st.characters(codec="utf-8", categories=["L", "N"]),
    min_size=1,
    max_size=24,
)
#: A folder name: no "/", not "." or "..".
hostile_folder = hostile_text.map(lambda text: text.replace("/", "_")).filter(
    lambda name: name not in (".", "..")
)
HYPOTHESIS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def read_when_written(path: Path, size: int = 1) -> str:
    """The text of `path` once it holds at least `size` bytes."""

    def written() -> str:
        return path.read_text() if path.exists() and path.stat().st_size >= size else ""

    return wait_until(
        written,
        what=str(path),
    )


def raw_reader(out: Path, size: int) -> str:
    """A pane script that puts its terminal in raw mode and copies `size` bytes to `out`."""
    part, whole = shlex.quote(f"{out}.part"), shlex.quote(str(out))
    return f"stty raw -echo; head -c {size} > {part}; mv {part} {whole}"


@pytest.mark.tmux
@HYPOTHESIS
@given(folder=hostile_folder, value=hostile_text)
@example(folder="#(touch pwned1)x#{host}y", value="abc;")  # issue 11's own vectors, every run
def test_hostile_workdir_env_and_log_path_reach_the_pane_literally(
    tmux: Tmux, tmp_path_factory: pytest.TempPathFactory, folder: str, value: str
) -> None:
    base = tmp_path_factory.mktemp("hostile")
    workdir = base / folder
    workdir.mkdir()
    out = base / "out.txt"
    log_dir = base / f"logs{folder}"
    log_dir.mkdir()
    script = 'printf "%s|%s" "$(pwd -P)" "$HOSTILE" > "$OUT"'

    tmux.start(
        "alpha",
        script,
        str(workdir),
        {"HOSTILE": value, "OUT": str(out)},
        pipe_command=pipe_command(log_path(log_dir)),
    )

    assert read_when_written(out) == f"{workdir.resolve()}|{value}"
    wait_until(lambda: not tmux.session_exists("alpha"), what="the session to end")
    assert sorted(path.name for path in base.iterdir()) == sorted([folder, "out.txt", log_dir.name])


@pytest.mark.tmux
@HYPOTHESIS
@given(text=hostile_text, key=st.sampled_from(list(SPECIALS.replace("\t", ""))))
def test_hostile_messages_and_keys_reach_the_pane_literally(
    tmux: Tmux, tmp_path_factory: pytest.TempPathFactory, text: str, key: str
) -> None:
    out = tmp_path_factory.mktemp("typed") / "typed.txt"
    expected = text + text + key
    tmux.start("alpha", raw_reader(out, len(expected.encode())), "/", {})
    wait_until(lambda: "alpha" in tmux.observe(), what="the pane")

    tmux.paste("alpha", text)
    tmux.send_literal("alpha", text)
    tmux.send_keys("alpha", [key])

    assert read_when_written(out) == expected


@pytest.mark.tmux
def test_format_in_a_workdir_runs_nothing_and_is_the_workdir(
    tmux: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the tmux server's folder, where `#(touch pwned1)` would run
    pwned = tmp_path / "pwned1"
    for index, folder in enumerate(["#(touch pwned1)", "x#{host}y", "a;", "#S"]):
        workdir = tmp_path / "w" / folder
        workdir.mkdir(parents=True)
        out = tmp_path / f"pwd{index}"
        tmux.start(f"a{index}", f'pwd -P > "{out}"', str(workdir), {})
        assert read_when_written(out).strip() == str(workdir.resolve())
    assert not pwned.exists()


@pytest.mark.tmux
def test_value_ending_in_a_semicolon_starts_the_agent(tmux: Tmux, tmp_path: Path) -> None:
    out = tmp_path / "v.txt"
    tmux.start("alpha", 'printf %s "$V" > "$OUT"', str(tmp_path), {"V": "abc;", "OUT": str(out)})
    assert read_when_written(out) == "abc;"


@pytest.mark.tmux
def test_key_names_cannot_carry_commands(tmux: Tmux, tmp_path: Path) -> None:
    tmux.start("alpha", "sleep 60", str(tmp_path), {})
    pwned = tmp_path / "pwned3"
    with pytest.raises(InvalidInput, match="invalid key"):
        tmux.send_keys("alpha", ["y;", "run-shell", f"touch {pwned}"])
    assert not pwned.exists()


@pytest.mark.tmux
def test_secrets_are_on_no_command_line(tmux: Tmux, tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    out = tmp_path / "seen"
    env_dir = tmp_path / "env"
    env_dir.mkdir(mode=0o700)
    script = f'printf %s "$TOKEN" > {out}; exec sleep 60'
    tmux.start("alpha", script, str(tmp_path), {"TOKEN": secret}, env_dir=env_dir)
    assert read_when_written(out) == secret
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert secret.encode() not in cmdline.read_bytes(), cmdline
        except OSError:
            continue
    # Emptied by the shell before its command ran, removed by the adapter's next call.
    assert [path.read_text() for path in env_dir.glob("env-*")] in ([], [""])
    assert not [path for path in env_dir.iterdir() if secret in path.read_text()]
    tmux.observe()
    assert list(env_dir.glob("env-*")) == []


@pytest.mark.tmux
def test_a_catastrophic_pattern_does_not_stop_supervision(orch: Orch) -> None:
    """`^(\\w+\\s?)+$` over an agent-written line froze Python's re (and the GIL) for minutes."""
    (orch.workdir / "plan.md").write_text("word " * 40 + "!\n")
    setup(
        orch,
        """\
    - name: one
      agent: worker
      prompt: "never sent: the step is skipped"
      when: {fileMatches: {path: plan.md, pattern: '^(\\w+\\s?)+$'}}
""",
        agents=("worker", "bystander"),
    )
    before = orch.agents()["bystander"]["status"]["restarts"]
    run = start(orch)
    os.kill(int(orch.agents()["bystander"]["status"]["pid"]), signal.SIGKILL)

    wait_until(lambda: in_state(orch, run, "Succeeded"), timeout=20, what="the run to finish")
    wait_until(
        lambda: orch.agents()["bystander"]["status"]["restarts"] > before,
        timeout=20,
        what="the killed bystander to be restarted",
    )


def team(orch: Orch, agents: dict[str, str]) -> Path:
    """Apply fake agents (name -> extra spec lines) and wait until they run."""
    docs = [
        f"""\
apiVersion: orch/v1
kind: Agent
metadata: {{name: {name}}}
spec:
  command: {sys.executable} {FAKE_AGENT}
  startup: {{after: 200ms}}
{extra}"""
        for name, extra in agents.items()
    ]
    manifest = orch.workdir / "team.yaml"
    manifest.write_text("---\n".join(docs))
    orch.run("apply", "-f", str(manifest), "--wait")
    return manifest


def agent_tree_environ(pid: int) -> list[dict[str, str]]:
    """The environments of a pane process and everything under it."""
    found = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            found.append(proc.environ())
    return found


def cmdlines_holding(secret: str) -> list[str]:
    """Every /proc/PID/cmdline that contains `secret`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if secret.encode() in cmdline.read_bytes():
                found.append(str(cmdline))
    return found


@pytest.mark.tmux
def test_secrets_stay_out_of_argv_get_describe_events_and_logs(orch: Orch) -> None:
    inline, from_file = "inline-" + os.urandom(6).hex(), "filed-" + os.urandom(6).hex()
    (orch.workdir / "token.txt").write_text(from_file + "\n")
    out = orch.workdir / "seen.txt"
    team(
        orch,
        {
            "aa": f"""\
  env:
    TOKEN: {inline}
    FILED: {{valueFrom: {{file: token.txt}}}}
    SEEN: {out}
"""
        },
    )
    # The fake agent is the pane's command; a second command line reads what it was given.
    pid = orch.agents()["aa"]["status"]["pid"]
    environs = agent_tree_environ(pid)
    assert any(e.get("TOKEN") == inline and e.get("FILED") == from_file for e in environs)

    shown = [
        orch.run("get", "agents", "-o", "json").stdout,
        orch.run("get", "agents", "-o", "yaml").stdout,
        orch.run("describe", "agent", "aa").stdout,
        orch.run("events", "-o", "json").stdout,
        (orch.state_dir / "controller.log").read_text(),
    ]
    for text in shown:
        assert inline not in text and from_file not in text
    assert orch.agents()["aa"]["spec"]["env"]["TOKEN"] == "********"
    assert orch.agents()["aa"]["spec"]["env"]["FILED"] == {
        "valueFrom": {"file": str(orch.workdir / "token.txt")}
    }
    assert from_file.encode() not in (orch.state_dir / "orch.db").read_bytes()
    assert cmdlines_holding(inline) == [] and cmdlines_holding(from_file) == []
    agent_dir = orch.state_dir / "agents" / "aa"
    assert all(path.read_text() == "" for path in agent_dir.glob("env-*")), "secrets left"
    wait_until(lambda: not list(agent_dir.glob("env-*")), what="the emptied env file removed")


def stop_controller(orch: Orch) -> None:
    pid = int((orch.state_dir / "controller.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(pid), what="the controller to stop")


@pytest.mark.tmux
def test_a_controller_started_from_inside_an_agent_carries_none_of_its_environment(
    orch: Orch,
) -> None:
    team(orch, {"aa": "", "zz": "  env: {SECRET_OF_ZZ: zz-only}\n"})
    zz_pid = orch.agents()["zz"]["status"]["pid"]
    zz_env = next(e for e in agent_tree_environ(zz_pid) if "SECRET_OF_ZZ" in e)
    stop_controller(orch)

    # `orch send` from inside zz, with zz's whole environment, starts the controller.
    inside = {**orch.env, **zz_env, "PYTHONPATH": orch.env["PYTHONPATH"]}
    subprocess.run(
        [sys.executable, "-m", "reconciler", "send", "aa", "hi"],
        env=inside,
        cwd=orch.workdir,
        check=True,
        capture_output=True,
    )
    controller = int(
        wait_until(lambda: (orch.state_dir / "controller.pid").read_text().strip(), what="pid")
    )
    environ = psutil.Process(controller).environ()
    assert "SECRET_OF_ZZ" not in environ and "ORCH_LAUNCH_ID" not in environ
    assert "ORCH_AGENT_NAME" not in environ

    # After a tmux server loss the controller's new server and aa carry nothing of zz.
    aa_before = orch.agents()["aa"]["status"]["pid"]
    orch.tmux("kill-server")
    wait_until(
        lambda: (
            orch.agents()["aa"]["status"]["pid"] not in (None, aa_before)
            and orch.agents()["zz"]["status"]["state"] == "Running"
            and orch.agents()["aa"]["status"]["state"] == "Running"
        ),
        timeout=20,
        what="aa and zz restarted",
    )
    aa_pid = orch.agents()["aa"]["status"]["pid"]
    assert all("SECRET_OF_ZZ" not in e for e in agent_tree_environ(aa_pid))
    server = psutil.Process(aa_pid).parent()
    assert server is not None
    assert "SECRET_OF_ZZ" not in server.environ()
    assert "ORCH_LAUNCH_ID" not in server.environ()
    # Restarting zz no longer ends the tmux server (it carried zz's launch marker).
    orch.run("delete", "agent", "zz")
    wait_until(lambda: "zz" not in orch.agents(), what="zz deleted")
    assert server.is_running()
    assert orch.agents()["aa"]["status"]["pid"] == aa_pid


@pytest.mark.tmux
def test_inside_an_agent_from_is_implied_and_cannot_be_forged(orch: Orch) -> None:
    team(orch, {"aa": "  talksTo: [bb]\n", "bb": "", "cc": ""})
    inside = {**orch.env, "ORCH_AGENT_NAME": "aa"}

    def send(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", "send", *args],
            env=inside,
            cwd=orch.workdir,
            capture_output=True,
            text=True,
            check=False,
        )

    refused = send("cc", "hi")
    assert refused.returncode == 1 and 'agent "aa" may not address "cc"' in refused.stderr
    forged = send("cc", "hi", "--from", "bb")
    assert forged.returncode == 1
    assert (
        forged.stderr
        == 'orch: error: --from bb: this command runs inside agent "aa" and sends as "aa"\n'
    )
    assert send("bb", "hi").returncode == 0


AGENT_YAML = """\
apiVersion: orch/v1
kind: Agent
metadata: {name: lone}
spec: {command: "sleep 600"}
"""


def apply_with_state_dir(orch: Orch, state_dir: Path) -> subprocess.CompletedProcess[str]:
    manifest = orch.workdir / "lone.yaml"
    manifest.write_text(AGENT_YAML)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(manifest)],
        env={**orch.env, "ORCH_STATE_DIR": str(state_dir)},
        cwd=orch.workdir,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_state_dir_writable_by_others_is_refused(orch: Orch, tmp_path: Path) -> None:
    state_dir = tmp_path / "open"
    state_dir.mkdir()
    state_dir.chmod(0o777)
    result = apply_with_state_dir(orch, state_dir)
    assert result.returncode == 3
    assert result.stderr == (
        f"orch: error: refused: state dir {state_dir} is writable by group or others "
        "(mode 0777); it must be private to you\n"
    )
    assert list(state_dir.iterdir()) == []


@pytest.mark.parametrize("planted", ["controller.log", "controller.pid", "orch.db"])
def test_a_symlink_planted_in_the_state_dir_is_refused(
    orch: Orch, tmp_path: Path, planted: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    state_dir = tmp_path / "planted"
    state_dir.mkdir(mode=0o700)
    (state_dir / planted).symlink_to(victim)
    result = apply_with_state_dir(orch, state_dir)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"orch: error: refused: {state_dir / planted} in the state dir is a symlink\n"
    )
    assert victim.read_text() == "precious\n"


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    """A throwaway second local user (needs root; removed afterwards)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("a second local user can only be created by root with useradd")
    name = f"orchsec{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def as_user(user: pwd.struct_passwd, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["su", "-s", "/bin/sh", user.pw_name, "-c", command],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )


@pytest.mark.tmux
def test_a_state_dir_planted_by_another_user_is_refused(
    orch: Orch, other_user: pwd.struct_passwd
) -> None:
    base = Path(tempfile.mkdtemp(prefix="orch-planted-", dir="/tmp"))
    try:
        state_dir = base / "state"
        state_dir.mkdir(mode=0o700)
        (state_dir / "orch.db").write_text("planted")
        for path in (state_dir, state_dir / "orch.db"):
            os.chown(path, other_user.pw_uid, other_user.pw_gid)
        result = apply_with_state_dir(orch, state_dir)
        assert result.returncode == 3
        assert result.stderr == (
            f"orch: error: refused: {state_dir} belongs to uid {other_user.pw_uid}, "
            f"not to you (uid {os.geteuid()})\n"
        )
        assert (state_dir / "orch.db").read_text() == "planted"
    finally:
        shutil.rmtree(base)


@pytest.mark.tmux
def test_another_user_cannot_read_secrets_or_attach(
    orch: Orch, other_user: pwd.struct_passwd
) -> None:
    secret = "other-" + os.urandom(6).hex()
    team(orch, {"aa": f"  env: {{TOKEN: {secret}}}\n"})
    pid = orch.agents()["aa"]["status"]["pid"]
    child = max(proc.pid for proc in psutil.Process(pid).children(recursive=True))

    peek = as_user(
        other_user,
        f"ps -eo args; cat /proc/{child}/environ /proc/{pid}/environ; "
        f"ls -R {shlex.quote(str(orch.state_dir))}; cat {shlex.quote(str(orch.state_dir))}/*",
    )
    assert secret not in peek.stdout + peek.stderr
    assert "Permission denied" in peek.stderr
    attach = as_user(other_user, f"tmux -L {orch.socket} attach -t aa")
    assert attach.returncode != 0


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ('{command: "sleep 9", env: {A: "a\\0b"}}', "spec.env.A", "must not contain NUL"),
        ('{command: "x\\0y"}', "spec.command", "must not contain control characters"),
        (
            '{command: "sleep 9", rateLimit: {cooldown: 99999999999999999999h}}',
            "spec.rateLimit.cooldown",
            "at most 30d",
        ),
        ('{command: "sleep 9", crashLoop: {backoff: 9999999h}}', "spec.crashLoop.backoff", "30d"),
        (
            '{command: "sleep 9", prompts: [{match: "x", keys: ["y;", run-shell, "touch x"]}]}',
            "spec.prompts[0].keys[0]",
            "invalid key",
        ),
        (
            '{command: "sleep 9", humanPatterns: ["(?<=a)b"]}',
            "spec.humanPatterns[0]",
            "invalid regex",
        ),
    ],
)
def test_values_a_process_cannot_take_are_refused_at_apply(
    orch: Orch, spec: str, field: str, reason: str
) -> None:
    manifest = orch.workdir / "bad.yaml"
    manifest.write_text(
        f"apiVersion: orch/v1\nkind: Agent\nmetadata: {{name: bad}}\nspec: {spec}\n"
    )
    result = orch.run("apply", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"orch: error: {manifest}:4: {field}: ")
    assert reason in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.tmux
def test_an_agent_is_known_by_its_process_tree_not_its_environment(orch: Orch) -> None:
    """aa drops or forges ORCH_AGENT_NAME: it still sends as aa, within aa's talksTo."""
    team(orch, {"aa": "  talksTo: [bb]\n", "bb": "", "cc": ""})
    out = orch.workdir / "out"
    orch_cli = f"{sys.executable} -m reconciler"

    def agent_runs(command: str) -> str:
        out.unlink(missing_ok=True)
        line = f'run {command} > {out} 2>&1; echo "exit $?" >> {out}'
        orch.tmux("send-keys", "-t", "=aa:", "-l", line)
        orch.tmux("send-keys", "-t", "=aa:", "Enter")
        return wait_until(
            lambda: out.read_text() if out.exists() and "exit " in out.read_text() else "",
            what=command,
        )

    unset = agent_runs(f"env -u ORCH_AGENT_NAME {orch_cli} send cc hi")
    assert 'agent "aa" may not address "cc"' in unset and unset.endswith("exit 1\n")
    other = agent_runs(f"env ORCH_AGENT_NAME=bb {orch_cli} send cc hi")
    assert 'agent "aa" may not address "cc"' in other and other.endswith("exit 1\n")
    forged = agent_runs(f"env -u ORCH_AGENT_NAME {orch_cli} send cc hi --from bb")
    assert forged == (
        'orch: error: --from bb: this command runs inside agent "aa" and sends as "aa"\nexit 1\n'
    )
    allowed = agent_runs(f"env -u ORCH_AGENT_NAME {orch_cli} send bb hi")
    assert allowed.endswith("exit 0\n")
