"""The systemd user unit: content, systemd quoting, install/uninstall, systemd-analyze verify."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.systemd import (
    exec_line,
    install,
    systemd_quote,
    uninstall,
    unit_dir,
    unit_name,
    unit_path,
    unit_text,
)

ORCH = [sys.executable, "-m", "reconciler"]


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME: nothing of the user's own systemd config is read or written."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def lines(text: str) -> list[str]:
    return text.splitlines()


def split_systemd(line: str) -> list[str]:
    """systemd's ExecStart word splitting for the quoting systemd_quote produces (test oracle).

    Words split on whitespace; "..." groups; backslash escapes are C escapes; then `%%` is `%`
    (specifiers) and `$$` is `$` (variables).
    """
    words, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while i < len(line):
        while i < len(line) and line[i] in " \t":
            i += 1
        if i == len(line):
            break
        raw: list[str] = []
        quoted = line[i] == '"'
        i += quoted
        while i < len(line) and (quoted or line[i] not in " \t"):
            char = line[i]
            if quoted and char == '"':
                i += 1
                break
            if char == "\\":
                code = line[i + 1]
                if code == "x":
                    value = int(line[i + 2 : i + 4], 16)
                    raw.append(chr(value) if value < 0x80 else chr(0xDC00 + value))
                    i += 4
                    continue
                raw.append(escapes[code])
                i += 2
                continue
            raw.append(char)
            i += 1
        words.append("".join(raw).replace("%%", "%").replace("$$", "$"))
    return words


# -- quoting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("/usr/bin/python3", "/usr/bin/python3"),
        ("--state-dir", "--state-dir"),
        ("a b", '"a b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("it's", '"it\'s"'),
        ("back\\slash", '"back\\\\slash"'),
        ("100%", '"100%%"'),
        ("$HOME", '"$$HOME"'),
        (";", '";"'),
        ("", '""'),
        ("two\nlines\ttab", '"two\\nlines\\ttab"'),
        ("bell\x07", '"bell\\x07"'),
        ("caf\udcc3", '"caf\\xc3"'),
        ("café", '"café"'),
    ],
)
def test_systemd_quote(word: str, expected: str) -> None:
    assert systemd_quote(word) == expected


def test_environment_values_keep_dollar_signs() -> None:
    assert systemd_quote("A=$HOME 5%", expand_env=False) == '"A=$HOME 5%%"'


@given(st.lists(st.text(st.characters(exclude_characters="\0")), min_size=1, max_size=6))
def test_exec_line_round_trips_through_systemd_splitting(args: list[str]) -> None:
    argv = ["/opt/orch venv/bin/python", *args]
    assert split_systemd(exec_line(argv)) == argv


@pytest.mark.parametrize("program", ["python3", "/opt/it's/python", "/opt/$x/python"])
def test_exec_line_refuses_programs_systemd_cannot_run(program: str) -> None:
    with pytest.raises(ValueError):
        exec_line([program, "-m", "reconciler"])


# -- the unit ------------------------------------------------------------------------------------


def test_unit_runs_this_installations_controller(tmp_path: Path) -> None:
    state = tmp_path / "state"
    text = unit_text(ORCH, state, "team-a", "orch controller")
    exec_start = next(line for line in lines(text) if line.startswith("ExecStart="))
    argv = split_systemd(exec_start.removeprefix("ExecStart="))
    assert argv == [
        *ORCH,
        *("--state-dir", str(state), "--socket", "team-a", "controller", "--take-over"),
    ]
    assert Path(argv[0]).is_absolute()
    assert f"Environment=ORCH_STATE_DIR={state}" in lines(text)
    assert "Environment=ORCH_TMUX_SOCKET=team-a" in lines(text)


def test_unit_keeps_agents_alive_and_restarts_the_controller(tmp_path: Path) -> None:
    text = lines(unit_text(ORCH, tmp_path, "orch", "orch controller"))
    for setting in (
        "[Unit]",
        "Description=orch controller",
        "StartLimitIntervalSec=0",
        "[Service]",
        "Type=simple",
        "Restart=always",
        "RestartSec=2",
        "KillMode=process",
        "TimeoutStopSec=10",
        "[Install]",
        "WantedBy=default.target",
    ):
        assert setting in text
    assert not any(line.startswith("After=") for line in text)
    assert text.index("[Unit]") < text.index("[Service]") < text.index("[Install]")


def test_unit_quotes_awkward_state_dirs(tmp_path: Path) -> None:
    state = tmp_path / 'my "team" 100% $HOME'
    text = unit_text(ORCH, state, "orch", "orch controller for 100%\nline two\\")
    exec_start = next(line for line in lines(text) if line.startswith("ExecStart="))
    assert split_systemd(exec_start.removeprefix("ExecStart="))[4] == str(state)
    env = next(line for line in lines(text) if "ORCH_STATE_DIR=" in line)
    quoted = str(state).replace('"', '\\"').replace("%", "%%")
    assert env == f'Environment="ORCH_STATE_DIR={quoted}"'  # $ stays: no variables here
    assert "Description=orch controller for 100%% line two" in lines(text)


def test_unit_adds_environment_for_the_agents(tmp_path: Path) -> None:
    text = unit_text(ORCH, tmp_path, "orch", "d", environment={"PATH": "/home/u/.local/bin:/bin"})
    assert "Environment=PATH=/home/u/.local/bin:/bin" in lines(text)
    with pytest.raises(ValueError):
        unit_text(ORCH, tmp_path, "orch", "d", environment={"NOT A NAME": "x"})


def test_unit_name_is_one_per_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert unit_name(a) != unit_name(b)
    assert unit_name(a) == unit_name(Path("a")) == unit_name(Path(f"{a}/"))
    assert unit_name(a).startswith("orch-controller-") and unit_name(a).endswith(".service")


def test_unit_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert unit_dir() == tmp_path / "home" / ".config" / "systemd" / "user"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/is/ignored")
    assert unit_dir() == tmp_path / "home" / ".config" / "systemd" / "user"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert unit_dir() == tmp_path / "cfg" / "systemd" / "user"


# -- install / uninstall -------------------------------------------------------------------------


def test_install_writes_the_unit_and_says_what_to_run(
    config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no systemctl, no systemd: still works
    state = tmp_path / "state"
    path, commands = install(state, "orch", ORCH)
    name = unit_name(state)
    assert path == config_home / "systemd" / "user" / name == unit_path(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert "KillMode=process" in path.read_text()
    assert f"--state-dir {state}" in path.read_text()
    assert commands[:2] == [
        "systemctl --user daemon-reload",
        f"systemctl --user enable --now {name}",
    ]
    assert commands[-1].startswith("loginctl enable-linger ")
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left


def test_reinstall_asks_for_a_restart_only_when_the_unit_changed(
    config_home: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    install(state, "orch", ORCH)
    _, same = install(state, "orch", ORCH)
    assert not any("restart" in command for command in same)
    path, changed = install(state, "other-socket", ORCH)
    assert f"systemctl --user restart {unit_name(state)}" in changed
    assert "--socket other-socket" in path.read_text()


def test_two_installations_get_two_units(config_home: Path, tmp_path: Path) -> None:
    first, _ = install(tmp_path / "a", "a", ORCH)
    second, _ = install(tmp_path / "b", "b", ORCH)
    assert first != second and first.exists() and second.exists()


def test_uninstall_removes_the_unit_and_its_enablement(config_home: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    path, _ = install(state, "orch", ORCH)
    wants = path.parent / "default.target.wants"
    wants.mkdir()
    (wants / path.name).symlink_to(path)  # what `systemctl --user enable` creates
    other, _ = install(tmp_path / "other", "orch", ORCH)
    removed, commands = uninstall(state)
    assert removed == path and not path.exists()
    assert not (wants / path.name).is_symlink()
    assert other.exists()
    assert commands == [f"systemctl --user stop {path.name}", "systemctl --user daemon-reload"]


def test_uninstall_without_a_unit_does_nothing(config_home: Path, tmp_path: Path) -> None:
    assert uninstall(tmp_path / "state") == (None, [])


# -- systemd's own verdict -----------------------------------------------------------------------


def systemd_analyze_verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify` in a private runtime dir (no user manager needed)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "SYSTEMD_LOG_LEVEL": "notice",
    }
    return subprocess.run(
        ["systemd-analyze", "--user", "--man=no", "verify", str(unit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


@needs_systemd_analyze
@pytest.mark.parametrize("state_name", ["state", 'odd "state" dir 100% $HOME'])
def test_systemd_analyze_accepts_the_unit(
    config_home: Path, tmp_path: Path, state_name: str
) -> None:
    path, _ = install(tmp_path / state_name, "orch", ORCH, environment={"PATH": "/usr/bin:/bin"})
    result = systemd_analyze_verify(path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert path.name not in result.stderr, result.stderr


@needs_systemd_analyze
def test_systemd_analyze_rejects_a_broken_unit(config_home: Path, tmp_path: Path) -> None:
    """The check above is worth something: verify does fail on a bad ExecStart."""
    path, _ = install(tmp_path / "state", "orch", ORCH)
    text = path.read_text().replace("ExecStart=", 'ExecStart="', 1)
    path.write_text(text)
    assert systemd_analyze_verify(path, tmp_path).returncode != 0
