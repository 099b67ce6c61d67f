"""`orch top`: a k9s-style live view of agents and runs, built on Textual.

It reads the store once a second (never tmux) and acts the way the CLI does: every key records
an intent in the store (restart, stop, start, answer, approve) and wakes the controller, which
alone carries it out. Imported only by `orch top`, so other commands do not pay for Textual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Header, Input, Label, RichLog

from reconciler.adapters.agentlog import log_path, read_log
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
from reconciler.adapters.tmux import Tmux
from reconciler.api.status import AgentRecord, AgentState
from reconciler.cli.output import age
from reconciler.cli.render import describe_agent, describe_run, live_message, usage_cells
from reconciler.core.runs import StepPhase
from reconciler.core.usage import UsageTotals

#: How often the view reads the store again.
REFRESH_SECONDS = 1.0
#: Log lines shown when following an agent's log.
LOG_LINES = 200
AGENT_HEADERS = (
    "NAME", "STATE", "ACTIVITY", "RESTARTS", "AGE", "TOKENS", "COST", "PROMPT / LAST LINE",
)  # fmt: skip
RUN_HEADERS = ("NAME", "PLAYBOOK", "STATE", "STEP", "ATTEMPT", "GATES", "AGE")


class AnswerScreen(ModalScreen[str | None]):
    """Asks for the answer to an agent's live prompt."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, agent: str, prompt: str) -> None:
        super().__init__()
        self.agent = agent
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical(id="answer"):
            yield Label(f"agent/{self.agent} asks: {self.prompt}")
            yield Input(placeholder="answer (Enter sends it, then Enter)", id="answer-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TopApp(App[None]):
    """Agents above, runs below, the selected object's describe or log at the bottom."""

    TITLE = "orch top"
    CSS = """
    #agents { height: 1fr; }
    #runs { height: 8; }
    #detail { height: 1fr; border-top: solid $accent; }
    #answer { width: 80%; height: auto; border: solid $accent; padding: 1; background: $panel; }
    AnswerScreen { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "answer", "answer"),
        Binding("p", "approve", "approve"),
        Binding("r", "restart", "restart"),
        Binding("s", "stop", "stop"),
        Binding("S", "start", "start"),
        Binding("t", "attach", "attach"),
        Binding("l", "logs", "logs"),
        Binding("d", "describe", "describe"),
        Binding("tab", "switch", "agents/runs"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        store: Store,
        paths: StatePaths,
        socket: str,
        who: str,
        wake: Callable[[], None],
        controller_running: Callable[[], bool],
    ) -> None:
        super().__init__()
        self.store = store
        self.paths = paths
        self.socket = socket
        self.who = who
        self.wake = wake
        self.controller_running = controller_running
        self.detail_mode = "describe"

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="agents", cursor_type="row")
        yield DataTable(id="runs", cursor_type="row")
        yield RichLog(id="detail", wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#agents", DataTable).add_columns(*AGENT_HEADERS)
        self.query_one("#runs", DataTable).add_columns(*RUN_HEADERS)
        self.refresh_view()
        self.set_interval(REFRESH_SECONDS, self.refresh_view)

    # -- reading the store --------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Read the store and redraw both tables and the detail pane."""
        now = time.time()
        records = self.store.agent_records()
        usage = self.store.usage_totals("agent")
        agents = self.query_one("#agents", DataTable)
        _fill(
            agents,
            [
                (o.name, _agent_row(o.name, records.get(o.name), usage.get(o.name), o.created, now))
                for o in self.store.objects("Agent")
            ],
        )
        runs = self.query_one("#runs", DataTable)
        _fill(runs, [(r.name, _run_row(r, now)) for r in self.store.runs()])
        self.sub_title = (
            "" if self.controller_running() else "no controller runs: status may be old"
        )
        self._show_detail()

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(table_id, DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def _focused_kind(self) -> str:
        return "run" if self.focused is self.query_one("#runs", DataTable) else "agent"

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", RichLog)
        text = self._detail_text()
        if text != getattr(self, "_shown_detail", None):
            self._shown_detail = text
            detail.clear()
            detail.write(text)

    def _detail_text(self) -> str:
        if self._focused_kind() == "run":
            name = self._selected("#runs")
            run = self.store.run(name) if name else None
            return describe_run(run, self.store.events(f"run/{name}", limit=10)) if run else ""
        name = self._selected("#agents")
        stored = self.store.object("Agent", name) if name else None
        if stored is None or name is None:
            return ""
        if self.detail_mode == "logs":
            lines = read_log(log_path(self.paths.agent_dir(name)), LOG_LINES)
            return "\n".join(lines) or "<no output yet>"
        obj = f"agent/{name}"
        return describe_agent(
            stored,
            self.store.agent_record(name),
            self.store.transitions(obj, limit=10),
            self.store.events(obj, limit=10),
            self.store.messages(name, limit=5),
            [],
            usage=self.store.usage_totals("agent").get(name),
        )

    # -- keys: each records an intent and wakes the controller --------------------------------

    def _agent(self) -> str | None:
        name = self._selected("#agents")
        if name is None:
            self.notify("no agent selected", severity="warning")
        return name

    def _done(self, message: str) -> None:
        self.wake()
        self.notify(message)
        self.refresh_view()

    def action_restart(self) -> None:
        if name := self._agent():
            self.store.request_start(name, "restart", self.who)
            self._done(f"agent/{name}: restart requested")

    def action_stop(self) -> None:
        if name := self._agent():
            self.store.hold_agent(name, self.who)
            self._done(f"agent/{name}: stop requested")

    def action_start(self) -> None:
        if name := self._agent():
            self.store.request_start(name, "start", self.who)
            self._done(f"agent/{name}: start requested")

    def action_answer(self) -> None:
        name = self._agent()
        if name is None:
            return
        record = self.store.agent_record(name)
        if record is None or record.state is not AgentState.AWAITING_HUMAN:
            self.notify(f"agent/{name} has no prompt waiting for an answer", severity="warning")
            return

        def answered(text: str | None) -> None:
            if text:
                self.store.add_answer(name, text, (), True, self.who)
                self._done(f"agent/{name}: answer {text!r} queued")

        self.push_screen(AnswerScreen(name, record.handled_prompt), answered)

    def action_approve(self) -> None:
        name = self._selected("#runs")
        run = self.store.run(name) if name else None
        current = run.record.current if run else None
        if run is None or current is None or current.phase is not StepPhase.AWAITING_APPROVAL:
            self.notify("select a run that waits for an approval", severity="warning")
            return
        self.store.add_signal(run.name, "approve", current.name, current.attempt)
        self._done(f"run/{run.name}: step {current.name} approved")

    def action_attach(self) -> None:
        """Hand the terminal to `tmux attach` on the agent's session until the person detaches."""
        name = self._agent()
        if name is None:
            return
        tmux = Tmux(self.socket)
        if not tmux.session_exists(name):
            self.notify(f"agent/{name} has no running session", severity="warning")
            return
        try:
            with self.suspend():
                tmux.attach_and_wait(name)
        except SuspendNotSupported:
            self.notify(f"this terminal cannot be handed over: run orch attach {name}")
        self.refresh_view()

    def action_logs(self) -> None:
        self.detail_mode = "logs"
        self._show_detail()

    def action_describe(self) -> None:
        self.detail_mode = "describe"
        self._show_detail()

    def action_switch(self) -> None:
        target = "#agents" if self._focused_kind() == "run" else "#runs"
        self.query_one(target, DataTable).focus()
        self._show_detail()


def _fill(table: DataTable[Any], rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """Replace the table's rows, keeping the cursor on the same row when it still exists."""
    selected = table.cursor_row
    table.clear()
    for key, row in rows:
        table.add_row(*row, key=key)
    if rows:
        table.move_cursor(row=min(selected, len(rows) - 1))


def _agent_row(
    name: str, record: AgentRecord | None, usage: UsageTotals | None, created: float, now: float
) -> tuple[str, ...]:
    spent = usage_cells(usage)
    if record is None:
        return (name, "Starting", "", "0", age(created, now), *spent, "waiting for the controller")
    activity = str(getattr(record, "activity", "") or "")
    if record.state is AgentState.AWAITING_HUMAN:
        line = f"? {record.handled_prompt}"
    else:
        line = live_message(record, now)
    return (
        name,
        record.state.value,
        activity,
        str(record.restarts),
        age(created, now),
        *spent,
        line[:120],
    )


def _run_row(run: Any, now: float) -> tuple[str, ...]:
    record = run.record
    current = record.current
    gates = ""
    if current is not None and current.current_gates:
        gates = " ".join(
            f"{g.name}:{'…' if g.pending else ('ok' if g.passed else 'FAIL')}"
            for g in current.current_gates
        )
    return (
        run.name,
        run.playbook,
        record.state.value,
        current.name if current else "",
        str(current.attempt if current else 0),
        gates[:60],
        age(run.created, now),
    )
