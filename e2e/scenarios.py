"""The issue-9 scenarios, run in order against one real CLI under one orch installation.

Each scenario returns a Result (PASS / FAIL with a one-line reason / SKIP). Verdicts come from
what orch recorded (state transitions in its store, `get -o json`) and what the model server
received (its request log, with a sha256 of every user text for byte-exact checks). The screen
is read only to wait for the CLI between scenarios and to say why something failed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.clis import CliSpec
from e2e.orchctl import Orch, Transition, descendants, wait_for
from e2e.server import ModelServer, Request, sha
from e2e.usage_check import usage_verdict

#: scenario key -> title (the table's columns, in run order)
SCENARIOS: dict[str, str] = {
    "a": "startup",
    "b": "msg",
    "c": "100KB",
    "d": "permission",
    "e": "idle",
    "g": "429",
    "h": "429-again",
    "f": "hang",
    "i": "kill-9",
    "u": "usage",
    "j": "kill-9-fresh",
}

# Message texts never contain words of a limit or prompt pattern ("rate limit", "[y/N]"):
# the CLIs echo them, and the screen reader would rightly or wrongly take them for the real thing.
STALE_AFTER = 15  # seconds
COOLDOWN = 20  # seconds
STRAY_WINDOW = 15  # seconds watched after the first message for requests that are none of ours
RETRY_AFTER = 3  # seconds the server's 429 asks the client to wait


@dataclass(frozen=True)
class Result:
    status: str  # PASS | FAIL | SKIP
    reason: str = ""


def passed(reason: str = "") -> Result:
    return Result("PASS", reason)


def failed(reason: str) -> Result:
    return Result("FAIL", reason)


@dataclass
class Session:
    cli: CliSpec
    orch: Orch
    server: ModelServer
    home: Path
    work: Path
    log: Callable[[str], None]
    agent: str = ""
    rules: list[dict[str, Any]] = field(default_factory=list)
    stale: dict[str, Any] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    """Texts sent so far that reached the model byte-exact (for the resumed-conversation check)."""

    def __post_init__(self) -> None:
        self.agent = self.cli.name
        self.rules = list(self.cli.startup_rules)

    # --- manifest ---------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        url = self.server.url
        spec: dict[str, Any] = {
            "command": self.cli.command(url),
            "restartCommand": self.cli.restart_command(url),
            "workdir": str(self.work),
            "env": {**self.cli.env(self.home, url), **self.extra_env},
            "profile": self.cli.profile,
            "restartPolicy": "Always",
            "crashLoop": {"maxRestarts": 10, "window": "10m", "backoff": "1s"},
            "rateLimit": {"cooldown": f"{COOLDOWN}s", "resume": "continue"},
            "prompts": self.rules,
        }
        if self.stale:
            spec["stale"] = self.stale
        return {
            "apiVersion": "orch/v1",
            "kind": "Agent",
            "metadata": {"name": self.agent, "labels": {"e2e": self.cli.name}},
            "spec": spec,
        }

    def apply(self, wait: float | None = None) -> tuple[bool, str]:
        done = self.orch.apply([self.manifest()], wait)
        lines = (done.stderr or done.stdout).strip().splitlines()
        return done.returncode == 0, lines[-1] if lines else ""

    # --- observing ----------------------------------------------------------------------------
    def state(self) -> str:
        return str(self.orch.status(self.agent).get("state", "?"))

    def screen(self) -> str:
        return self.orch.screen(self.agent)

    def last_line(self) -> str:
        # lines with words only: box borders and rules say nothing
        lines = [ln.strip() for ln in self.screen().splitlines() if re.search(r"\w", ln)]
        return _short(" | ".join(lines[-3:]), 160)

    def ready(self) -> bool:
        """Harness view: the CLI's empty input is drawn and no turn runs."""
        tail = "\n".join([ln for ln in self.screen().splitlines() if ln.strip()][-12:])
        drawn = re.search(self.cli.ready, tail, re.MULTILINE)
        return bool(drawn) and not re.search(self.cli.busy, tail)

    def transitions_to(self, dest: str, after: int) -> list[Transition]:
        return [t for t in self.orch.transitions(self.agent, after) if t.dest == dest]

    def settle(self, timeout: float = 90) -> bool:
        """Back to a quiet CLI: server answers text, orch says Running, the input is drawn."""
        self.server.mode("text")

        def quiet() -> bool:
            return self.state() == "Running" and self.ready()

        if wait_for(quiet, timeout, 1.0) and wait_for(quiet, 5, 1.0):
            return True
        for what, keys in (("interrupting", self.cli.interrupt), ("clearing", self.cli.clear)):
            self.log(f"settle: not quiet (state {self.state()}; {self.last_line()}); {what}")
            for key in keys:
                self.orch.keys(self.agent, key)
                time.sleep(0.5)
            if wait_for(quiet, 20, 1.0):
                return True
        return False

    def wait_text(self, text: str, after: int, timeout: float) -> list[Request]:
        """Requests (from log mark `after`) that carry `text` byte-exact as a user text."""
        h = sha(text)
        got = wait_for(
            lambda: [r for r in self.server.requests(after) if h in r.unwrapped], timeout
        )
        return got or []


# --- helpers ------------------------------------------------------------------------------------
def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _nonce() -> str:
    return secrets.token_hex(4)


def _delivered(s: Session) -> bool:
    """Whether orch's newest message event says it delivered the newest message."""
    found = [e for e in s.orch.events(s.agent) if e[2] in ("Delivered", "DeliveryUnconfirmed")]
    return bool(found) and found[-1][2] == "Delivered"


def _judge_delivery(s: Session, text: str, nonce: str, after: int, timeout: float) -> Result:
    """`text` reached the model byte-exact, as one user message, once as the newest one."""
    found = s.wait_text(text, after, timeout)
    h = sha(text)
    if not found:
        reqs = s.server.requests(after)
        near = [t for r in reqs for t in r.texts if nonce in t]
        if near:
            return failed(f"arrived altered: {_short(near[0], 90)!r}")
        state = s.state()
        bottom = "\n".join([ln for ln in s.screen().splitlines() if ln.strip()][-6:])
        said = "orch: Delivered" if _delivered(s) else "orch: not delivered"
        if nonce in bottom or re.search(r"\[Pasted [Tt]ext", bottom):
            return failed(f"not submitted: the text sits in the input ({said}; state {state})")
        return failed(
            f"lost: never reached the model ({said}; state {state}; screen: {s.last_line()})"
        )
    first = found[0]
    if first.unwrapped.count(h) != 1:
        return failed(f"sent {first.unwrapped.count(h)}x within one request")
    if first.unwrapped[-1] != h:
        return failed("arrived, but not as the newest user message")
    newest = [r for r in s.server.requests(after) if r.unwrapped and r.unwrapped[-1] == h]
    if len(newest) > 1 and not all(r.status == 429 for r in newest[:-1]):
        return failed(f"submitted {len(newest)} times")
    s.sent.append(text)
    wrapped = h not in first.hashes
    return passed("byte-exact inside the CLI's own paste wrapper" if wrapped else "")


# --- scenarios ----------------------------------------------------------------------------------
def startup_and_first_message(s: Session) -> tuple[Result, Result]:
    """(a) startup dialogs answered by rule or AwaitingHuman; (b) a message sent right after
    `apply --wait` arrives byte-exact, once, submitted."""
    nonce = _nonce()
    text = f"e2e-b {nonce}: \"double\" 'single' $HOME `tick` ünïcødé ✓ end"
    mark = s.server.mark()
    ok, out = s.apply(wait=120)
    sent = s.orch.send(s.agent, text)  # right after apply --wait, as a script would
    s.log(f"apply --wait: {'ok' if ok else 'FAILED ' + out}; send rc {sent.returncode}")
    if not ok:
        a = failed(f"apply --wait failed: {_short(out, 80)} (state {s.state()}; {s.last_line()})")
    else:
        a = _judge_startup(s)
    b = _judge_delivery(s, text, nonce, mark, 90)
    if a.status == "FAIL":
        _start_over_preseeded(s)
    else:
        time.sleep(STRAY_WINDOW)  # an answered dialog's rule firing again shows up within this
    stray = [
        r
        for r in s.server.requests(mark)
        if not any(nonce in t or re.match(s.cli.side_calls, t) for t in r.texts)
    ]
    if a.status == "PASS" and stray:
        # e.g. a rule's answer typed again into the chat input once its question was answered
        a = failed(
            f"{len(stray)} stray model request(s) at start-up, user text "
            f"{_short(repr(stray[0].texts[-1:]), 60)}"
        )
    return a, b


def _start_over_preseeded(s: Session) -> None:
    """Delete the agent and start it again with its dialogs settled in advance, so that one
    start-up failure does not hide what the other scenarios would find."""
    s.log("start-up failed: starting over with the dialogs settled in advance")
    s.orch.run("delete", "agent", s.agent)
    wait_for(lambda: s.orch.pane_pid(s.agent) is None and not s.orch.agent(s.agent), 30, 1.0)
    s.extra_env = s.cli.preseed(s.home, s.work)
    ok, out = s.apply(wait=120)
    if not ok:
        s.log(f"apply after preseeding failed too: {out}")


def _judge_startup(s: Session) -> Result:
    dialogs = [r["match"] for r in s.cli.startup_rules]

    def outcome() -> str | None:
        state = s.state()
        if state == "AwaitingHuman":
            return "awaiting"
        if state == "Running" and s.ready():
            return "ready"
        return None

    got = wait_for(outcome, 60, 1.0)
    if got == "ready":
        waited = [t for t in s.orch.transitions(s.agent) if t.dest == "AwaitingHuman"]
        answers = [e for e in s.orch.events(s.agent) if e[2] == "Answered"]
        how = "via AwaitingHuman" if waited else "by rule"
        return passed(f"{len(answers)} dialog(s) answered {how}")
    if got == "awaiting":
        msg = s.orch.status(s.agent).get("message", "")
        # a human answers, so the other scenarios can run
        for rule in s.cli.startup_rules:
            if re.search(rule["match"], s.screen()):
                _answer_by_hand(s, rule)
        return passed(f"AwaitingHuman: {_short(str(msg), 60)}")
    screen = s.screen()
    open_dialogs = [d for d in dialogs if re.search(d, screen)]
    if open_dialogs:
        return failed(f"dialog /{open_dialogs[0]}/ unanswered while orch says {s.state()}")
    return failed(f"not ready after 60s: orch {s.state()}; {_exits(s)}screen: {s.last_line()}")


def _exits(s: Session) -> str:
    """How often the CLI exited, and orch's last word on it, for a failure reason."""
    exits = [e for e in s.orch.events(s.agent) if "exited" in e[3]]
    if not exits:
        return ""
    return f"CLI exited {len(exits)}x (last: {_short(exits[-1][3], 60)}); "


def _answer_by_hand(s: Session, rule: dict[str, Any]) -> None:
    if "keys" in rule:
        for key in rule["keys"]:
            s.orch.keys(s.agent, key)
            time.sleep(0.6)
    else:
        s.orch.tmux("send-keys", "-t", f"={s.agent}:", "-l", rule["answer"])
        time.sleep(0.6)
        s.orch.keys(s.agent, "Enter")


def big_message(s: Session) -> Result:
    """(c) a 100 KB message arrives byte-exact as one user message and is submitted."""
    nonce = _nonce()
    line = "0123456789 the quick brown fox jumps over the lazy dog, e2e-c line {:05d}\n"
    parts = [f"e2e-c {nonce}: a 100 KB message follows\n"]
    i = 0
    while sum(map(len, parts)) < 100 * 1024:
        parts.append(line.format(i))
        i += 1
    text = "".join(parts) + f"end of e2e-c {nonce}"
    mark = s.server.mark()
    s.orch.send(s.agent, text)
    return _judge_delivery(s, text, nonce, mark, 150)


def permission(s: Session) -> Result:
    """(d) a permission prompt -> AwaitingHuman with the question in status.message; then a rule
    added to the manifest answers it."""
    marker = s.work / "e2e-tool-ran"
    if marker.exists():
        marker.unlink()
    after = s.orch.last_transition_id(s.agent)
    s.server.mode("tool")
    s.orch.send(s.agent, f"e2e-d {_nonce()}: run the e2e tool")
    seen = wait_for(lambda: s.transitions_to("AwaitingHuman", after), 90, 1.0)
    s.server.mode("text")
    question_on_screen = bool(re.search(s.cli.permission_question, s.screen()))
    if not seen:
        why = (
            f"question on screen, orch says {s.state()}"
            if question_on_screen
            else f"no prompt seen; orch {s.state()}; screen: {s.last_line()}"
        )
        _answer_if_open(s)
        return failed(why)
    status = s.orch.status(s.agent)
    message = str(status.get("message", ""))
    if status.get("state") != "AwaitingHuman" and not marker.exists():
        left = s.orch.transitions(s.agent, seen[0].id)
        how = f"{left[0].reason}: {_short(left[0].message, 50)}" if left else status.get("state")
        still = "still on screen" if re.search(s.cli.permission_question, s.screen()) else "gone"
        _answer_if_open(s)
        return failed(f"left AwaitingHuman before any rule ({how}); the question is {still}")
    if not marker.exists() and not re.search(s.cli.permission_question, message):
        why = f"AwaitingHuman but status.message is {_short(message, 70)!r}"
        _answer_if_open(s)
        return failed(why)
    if marker.exists():
        # nobody may answer before the rule exists: an extra Enter after the message did
        return failed("the question was answered before any rule existed (an Enter too many?)")
    after = s.orch.last_transition_id(s.agent)
    s.rules = [*s.rules, s.cli.permission_rule]
    ok, out = s.apply()
    if not ok:
        return failed(f"apply of the rule failed: {out}")
    ran = wait_for(lambda: marker.exists(), 45, 1.0)
    if not ran:
        why = f"the rule added while the prompt waits did not answer it in 45s (orch {s.state()})"
        _answer_if_open(s)
        return failed(why)
    back = wait_for(lambda: s.state() == "Running", 30, 1.0)
    if not back:
        return failed(f"tool ran but orch stays {s.state()}")
    return passed()


def _answer_if_open(s: Session) -> None:
    if re.search(s.cli.permission_question, s.screen()):
        _answer_by_hand(s, s.cli.permission_rule)


def _apply_stale_restart(s: Session) -> Result | None:
    """Apply stale.after STALE_AFTER with action restart (scenarios e and f); None: applied."""
    s.stale = {"after": f"{STALE_AFTER}s", "action": "restart"}
    ok, out = s.apply()
    return None if ok else failed(f"apply failed: {out}")


def idle(s: Session) -> Result:
    """(e) idle for 3x stale.after: not Stale, not restarted, not nudged (no model request)."""
    if refused := _apply_stale_restart(s):
        return refused
    after = s.orch.last_transition_id(s.agent)
    restarts = s.orch.status(s.agent).get("restarts", 0)
    mark = s.server.mark()
    time.sleep(3 * STALE_AFTER)
    moved = s.orch.transitions(s.agent, after)
    reqs = s.server.requests(mark)
    now_restarts = s.orch.status(s.agent).get("restarts", 0)
    s.stale = None
    s.apply()
    if any(t.dest == "Stale" for t in moved):
        return failed(f"went Stale ({', '.join(t.source + '->' + t.dest for t in moved)})")
    if now_restarts != restarts:
        return failed(f"restarted ({restarts} -> {now_restarts})")
    if reqs:
        return failed(f"{len(reqs)} model request(s) while idle: {_short(str(reqs[0].texts[-1:]))}")
    if moved:
        return failed(f"state moved: {', '.join(t.source + '->' + t.dest for t in moved)}")
    return passed()


def hang(s: Session) -> Result:
    """(f) the model stalls mid-turn -> Stale (stale.after, action restart)."""
    if refused := _apply_stale_restart(s):
        return refused
    after = s.orch.last_transition_id(s.agent)
    s.server.mode("hang")
    s.orch.send(s.agent, f"e2e-f {_nonce()}: this request will hang")
    seen = wait_for(lambda: s.transitions_to("Stale", after), STALE_AFTER + 60, 1.0)
    hung = not seen and bool(re.search(s.cli.busy, s.screen()))
    s.server.mode("text")
    s.stale = None
    s.apply()
    if not seen:
        status = s.orch.status(s.agent)
        activity = f", activity {status['activity']}" if "activity" in status else ""
        shows = "the hung turn on screen" if hung else f"screen: {s.last_line()}"
        return failed(f"no Stale within {STALE_AFTER + 60}s (orch {s.state()}{activity}; {shows})")
    # the stale restart resumes the conversation: its old limit lines are history
    wait_for(lambda: s.state() == "Running" and s.ready(), 60, 1.0)
    time.sleep(10)
    cooled = [t for t in s.orch.transitions(s.agent, seen[0].id) if t.dest == "CoolingDown"]
    if cooled:
        return failed(f"false CoolingDown after the stale restart: {_short(cooled[0].message, 90)}")
    return passed(f"Stale, then {s.state()}")


def _refusals(s: Session, mark: int) -> str:
    n = sum(1 for r in s.server.requests(mark) if r.status == 429)
    return f"the server refused {n} request(s)" if n else "the message never reached the server"


def _refused_into_cooldown(s: Session, message: str) -> tuple[Transition | None, str]:
    """Send `message` while the server answers 429: the CoolingDown it brings within 120 s, or
    None and why not (scenarios g and h both start so)."""
    after = s.orch.last_transition_id(s.agent)
    mark = s.server.mark()
    s.server.mode("429", retry_after=RETRY_AFTER)
    s.orch.send(s.agent, message)
    seen = wait_for(lambda: s.transitions_to("CoolingDown", after), 120, 1.0)
    s.server.mode("text")
    if seen:
        return seen[0], ""
    return None, f"within 120s ({_refusals(s, mark)}; orch {s.state()}; {s.last_line()})"


def _cooldown_end(s: Session, cooling: Transition) -> list[Transition]:
    """The transitions out of `cooling`'s CoolingDown ([] if it lasted COOLDOWN + 90 s)."""
    ended: list[Transition] = wait_for(
        lambda: [t for t in s.orch.transitions(s.agent, cooling.id) if t.source == "CoolingDown"],
        COOLDOWN + 90,
        1.0,
    )
    return ended or []


def rate_limit(s: Session) -> Result:
    """(g) 429 -> CoolingDown -> resume -> a message held during the cooldown delivered once."""
    message = f"e2e-g {_nonce()}: first request while the server refuses"
    cooling, why_not = _refused_into_cooldown(s, message)
    if cooling is None:
        return failed(f"no CoolingDown {why_not}")
    nonce = _nonce()
    held = f"e2e-g-held {nonce}: sent during the cooldown"
    mark = s.server.mark()
    s.orch.send(s.agent, held)
    resumed = _cooldown_end(s, cooling)
    if not resumed:
        return failed(f"CoolingDown did not end within {COOLDOWN + 90}s ({s.state()})")
    early = [r for r in s.wait_text(held, mark, 0) if r.t < resumed[0].time]
    if early:
        return failed("the held message was delivered during the cooldown")
    result = _judge_delivery(s, held, nonce, mark, 90)
    if result.status != "PASS":
        return failed(f"held message: {result.reason}")
    return passed(f"cooled {resumed[0].time - cooling.time:.0f}s")


def rate_limit_again(s: Session) -> Result:
    """(h) the same 429 again after the resume -> CoolingDown again."""
    message = f"e2e-h {_nonce()}: second request while the server refuses"
    cooling, why_not = _refused_into_cooldown(s, message)
    if cooling is None:
        return failed(f"no second CoolingDown {why_not}")
    _cooldown_end(s, cooling)
    return passed()


def _kill_pane_tree(s: Session, agent: str, note: str) -> bool:
    """SIGKILL every process under `agent`'s pane (the CLI and its children); False: no pane."""
    pane = s.orch.pane_pid(agent)
    if pane is None:
        return False
    victims = descendants(pane)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    s.log(f"kill -9 {victims}{note}")
    return True


def kill9(s: Session) -> Result:
    """(i) kill -9 of the CLI -> restarted, conversation resumed, no false cooldown."""
    if not s.sent:
        pre = f"e2e-i-pre {_nonce()}: remember this"
        mark = s.server.mark()
        s.orch.send(s.agent, pre)
        if not s.wait_text(pre, mark, 90):
            return failed("could not seed a conversation before the kill")
        s.sent.append(pre)
        s.settle()
    after = s.orch.last_transition_id(s.agent)
    restarts = s.orch.status(s.agent).get("restarts", 0)
    if not _kill_pane_tree(s, s.agent, ""):
        return failed("no pane to kill")
    back = wait_for(
        lambda: (
            s.orch.status(s.agent).get("restarts", 0) != restarts
            and s.state() == "Running"
            and s.ready()
        ),
        90,
        1.0,
    )
    if not back:
        return failed(
            f"not back to Running+ready within 90s (orch {s.state()}, restarts "
            f"{s.orch.status(s.agent).get('restarts')}; {s.last_line()})"
        )
    time.sleep(10)  # a replayed limit line would start a cooldown now
    moved = s.orch.transitions(s.agent, after)
    if any(t.dest == "CoolingDown" for t in moved):
        s.settle()
        return failed("false CoolingDown after the restart (limit replayed from history)")
    nonce = _nonce()
    probe = f"e2e-i {nonce}: what did I say before"
    mark = s.server.mark()
    s.orch.send(s.agent, probe)
    got = _judge_delivery(s, probe, nonce, mark, 90)
    if got.status != "PASS":
        return failed(f"after restart: {got.reason}")
    req = s.wait_text(probe, mark, 0)[0]
    earlier = {sha(t) for t in s.sent[:-1]}
    if not earlier & set(req.unwrapped) and len(req.hashes) < 2:
        return failed("restarted without the conversation (only the new message was sent)")
    return passed()


def kill9_fresh(s: Session) -> Result:
    """(j) kill -9 of a second agent before its first turn -> restarted once and usable (a
    restart command that resumes, `claude --continue`, has no conversation to resume yet)."""
    root = s.home.parent / "fresh"
    home, work = root / "home", root / "work"
    home.mkdir(parents=True)
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    s.cli.setup(home, work, s.server.url)
    fresh = Session(s.cli, s.orch, s.server, home, work, s.log)
    fresh.agent = f"{s.cli.name}-fresh"
    fresh.extra_env = s.cli.preseed(home, work)  # its dialogs are (a)'s business, not this one's
    done = s.orch.apply([s.manifest(), fresh.manifest()], 120)
    try:
        if done.returncode != 0:
            return failed(f"apply of a second agent failed: {_short(done.stderr, 80)}")
        if not wait_for(lambda: fresh.state() == "Running" and fresh.ready(), 90, 1.0):
            return failed(f"second agent never ready ({fresh.state()}; {fresh.last_line()})")
        after = s.orch.last_transition_id(fresh.agent)
        if not _kill_pane_tree(s, fresh.agent, " (before its first turn)"):
            return failed("no pane to kill")
        back = wait_for(
            lambda: (
                fresh.orch.status(fresh.agent).get("restarts", 0) >= 1
                and fresh.state() == "Running"
                and fresh.ready()
            ),
            90,
            1.0,
        )
        time.sleep(5)  # a restart command that cannot start exits within this
        starts = [t for t in s.orch.transitions(fresh.agent, after) if t.dest == "Starting"]
        if not back or len(starts) != 1:
            how = "; ".join(f"{t.reason}: {_short(t.message, 70)}" for t in starts[-2:])
            return failed(
                f"{len(starts)} restart(s), orch {fresh.state()} ({how}; {_exits(fresh)}"
                f"screen: {fresh.last_line()})"
            )
        nonce = _nonce()
        probe = f"e2e-j {nonce}: the first message after the restart"
        mark = s.server.mark()
        s.orch.send(fresh.agent, probe)
        got = _judge_delivery(fresh, probe, nonce, mark, 90)
        if got.status != "PASS":
            return failed(f"after the restart: {got.reason}")
        return passed(f"restarted with: {_short(starts[0].message, 70)}")
    finally:
        s.orch.run("delete", "agent", fresh.agent)


def usage(s: Session) -> Result:
    """(u) `orch usage -o json` for the agent equals the usage the model server handed out."""
    ok, why = usage_verdict(s.orch, s.server.log, s.agent, s.cli.profile, s.work)
    return passed(why) if ok else failed(why)


def run_all(s: Session, wanted: set[str]) -> dict[str, Result]:
    """Run the wanted scenarios in order; a and b always run (every other one needs them)."""
    results: dict[str, Result] = {}
    s.orch.start_controller()
    a, b = startup_and_first_message(s)
    results["a"], results["b"] = a, b
    s.log(f"a: {a}  b: {b}")
    steps: list[tuple[str, Callable[[Session], Result]]] = [
        ("c", big_message),
        ("d", permission),
        ("e", idle),
        ("g", rate_limit),
        ("h", rate_limit_again),
        ("f", hang),
        ("i", kill9),
        ("u", usage),
        ("j", kill9_fresh),
    ]
    if "h" in wanted:
        wanted = wanted | {"g"}
    unusable = ""
    for key, fn in steps:
        if key not in wanted:
            continue
        if unusable:
            results[key] = Result("SKIP", unusable)
            continue
        if not s.settle():
            # one FAIL says why; the rest would only wait for the same thing
            results[key] = failed(
                f"CLI not quiet before the scenario (orch {s.state()}; {_exits(s)}"
                f"screen: {s.last_line()})"
            )
            unusable = f"agent unusable since ({key})"
            s.log(f"{key}: {results[key]}")
            continue
        if key == "h" and results.get("g", Result("SKIP")).status != "PASS":
            results[key] = Result("SKIP", "needs (g) to pass first")
            continue
        started = time.monotonic()
        try:
            results[key] = fn(s)
        except Exception as err:  # noqa: BLE001 - one scenario's crash is its FAIL
            results[key] = failed(f"harness error: {type(err).__name__}: {_short(str(err), 80)}")
        s.log(f"{key} ({SCENARIOS[key]}, {time.monotonic() - started:.0f}s): {results[key]}")
    return results
