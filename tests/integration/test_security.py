"""Security: hostile names, paths, values, keys, messages, screens and other local users.

Each test is one vector of issue 11 ("Why"), written so it failed before the fix: text that tmux
would interpret, secrets on command lines, leaking environments, planted state dirs, guards an
agent can walk around. The property tests drive hostile strings through every path into real
tmux (a private socket per test) and check that tmux received them literally.
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters.agentlog import log_path, pipe_command
from reconciler.adapters.tmux import Tmux
from reconciler.api.errors import InvalidInput
from tests.conftest import Orch
from tests.helpers import wait_until
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
    return wait_until(
        lambda: path.exists() and path.stat().st_size >= size and path.read_text(),
        what=str(path),
    )


def raw_reader(out: Path, size: int) -> str:
    """A pane script that puts its terminal in raw mode and copies `size` bytes to `out`."""
    part, whole = shlex.quote(f"{out}.part"), shlex.quote(str(out))
    return f"stty raw -echo; head -c {size} > {part}; mv {part} {whole}"


@pytest.mark.tmux
@HYPOTHESIS
@given(folder=hostile_folder, value=hostile_text)
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
    tmux.start(
        "alpha", f'printf %s "$TOKEN" > {out}; exec sleep 60', str(tmp_path), {"TOKEN": secret}
    )
    assert read_when_written(out) == secret
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert secret.encode() not in cmdline.read_bytes(), cmdline
        except OSError:
            continue
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("env-")]
    assert not [
        path
        for path in Path(os.environ.get("TMPDIR", "/tmp")).glob("env-*")
        if secret in _text(path)
    ]


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


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
      when: {fileMatches: {path: plan.md, pattern: '^(\\\\w+\\\\s?)+$'}}
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
