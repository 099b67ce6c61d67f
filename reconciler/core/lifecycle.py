"""The agent lifecycle as a `transitions` state machine, declared as tables.

Pure: the planner decides *which* trigger an observation calls for; the machine decides whether that
edge exists and where it leads, so an illegal move raises instead of silently corrupting state.
Callbacks are deliberately absent: side effects belong to the executor, not to the machine.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from transitions import Machine

from reconciler.api.status import LIVE_STATES, AgentState, RunState

_S = AgentState

#: trigger, sources, destination: one row per edge of the contract's state table.
AGENT_TRANSITIONS: tuple[tuple[str, tuple[AgentState, ...], AgentState], ...] = (
    # (new) / Stopped by policy and then re-specified -> Starting
    ("start", (_S.STOPPED,), _S.STARTING),
    # CrashLooping -> Starting: backoff ended
    ("retry", (_S.CRASH_LOOPING,), _S.STARTING),
    # Starting -> Running: alive past startup, or ready pattern seen
    ("ready", (_S.STARTING,), _S.RUNNING),
    # live -> Starting: process exited or session gone and restarted, or spec changed
    ("restart", LIVE_STATES, _S.STARTING),
    # live -> CrashLooping: too many restarts in the window; wait out the backoff
    ("crash_loop", LIVE_STATES, _S.CRASH_LOOPING),
    # live / CrashLooping -> Stopped: exited under a policy that does not restart, or deleted
    ("stop", (*LIVE_STATES, _S.CRASH_LOOPING), _S.STOPPED),
    # Running -> Stale: screen unchanged for stale.after
    ("stall", (_S.RUNNING,), _S.STALE),
    # Stale -> Running: the screen moved again (after a nudge, or on its own)
    ("recover", (_S.STALE,), _S.RUNNING),
    # Running -> CoolingDown: a rate or usage limit on screen
    ("rate_limit", (_S.RUNNING, _S.STALE), _S.COOLING_DOWN),
    # CoolingDown -> Running: deadline passed, resume text sent
    ("cooled", (_S.COOLING_DOWN,), _S.RUNNING),
    # Running -> AwaitingHuman: a human-input prompt no rule answers
    ("await_human", (_S.RUNNING, _S.STALE), _S.AWAITING_HUMAN),
    # AwaitingHuman -> Running: the screen moved on (a person answered)
    ("answered", (_S.AWAITING_HUMAN,), _S.RUNNING),
)


_R = RunState

#: trigger, sources, destination: the playbook run machine.
RUN_TRANSITIONS: tuple[tuple[str, tuple[RunState, ...], RunState], ...] = (
    # Pending -> Running: the first step begins
    ("start", (_R.PENDING,), _R.RUNNING),
    # Running -> AwaitingHuman: an approval gate waits for `orch approve`
    ("await_approval", (_R.RUNNING,), _R.AWAITING_HUMAN),
    # AwaitingHuman -> Running: approved
    ("approved", (_R.AWAITING_HUMAN,), _R.RUNNING),
    # Running -> Succeeded: every step passed or was skipped
    ("succeed", (_R.RUNNING,), _R.SUCCEEDED),
    # any unfinished state -> Failed: gates failed maxAttempts times, a timeout, a missing agent
    ("fail", (_R.PENDING, _R.RUNNING, _R.AWAITING_HUMAN), _R.FAILED),
)

State = TypeVar("State", AgentState, RunState)
Table = tuple[tuple[str, tuple[State, ...], State], ...]


def _machine_tables(states: type[StrEnum], table: Table[Any]) -> dict[str, Any]:
    """A machine's states and transitions in the form `transitions` takes."""
    return {
        "states": [state.value for state in states],
        "transitions": [
            {"trigger": trigger, "source": [s.value for s in sources], "dest": dest.value}
            for trigger, sources, dest in table
        ],
        "auto_transitions": False,
    }


class Lifecycle:
    """One kind's machine, built once; `fire` answers from the edges the machine itself declared.

    Building a `transitions.Machine` costs far more than a pass can spend per agent, so each kind
    gets one machine without a model, and its event table (trigger -> source -> dest), read back
    once, answers every call: a dictionary lookup, with transitions' own error for a missing edge.
    """

    def __init__(self, states: type[StrEnum], table: Table[Any]) -> None:
        # Imported on first use: the CLI reads records through this module and never fires edges.
        from transitions import Machine

        self.machine: Machine = Machine(model=None, initial=None, **_machine_tables(states, table))
        self.edges: dict[tuple[str, str], str] = {
            (source, trigger): str(moves[0].dest)
            for trigger, event in self.machine.events.items()
            for source, moves in event.transitions.items()
        }

    def fire(self, state: StrEnum, trigger: str) -> str:
        """Where `trigger` leads from `state`; raises `transitions.MachineError` if no such edge."""
        try:
            return self.edges[state.value, trigger]
        except KeyError:
            from transitions import MachineError

            raise MachineError(f"Can't trigger event {trigger} from state {state.value}!") from None


@functools.cache
def _agent_lifecycle() -> Lifecycle:
    return Lifecycle(AgentState, AGENT_TRANSITIONS)


@functools.cache
def _run_lifecycle() -> Lifecycle:
    return Lifecycle(RunState, RUN_TRANSITIONS)


def next_state(state: AgentState, trigger: str) -> AgentState:
    """Where `trigger` leads an agent from `state`, as the machine says."""
    return AgentState(_agent_lifecycle().fire(state, trigger))


def next_run_state(state: RunState, trigger: str) -> RunState:
    """Where `trigger` leads a playbook run from `state`, as the machine says."""
    return RunState(_run_lifecycle().fire(state, trigger))


def mermaid_diagram(states: type[StrEnum], table: Table[Any], initial: StrEnum, title: str) -> str:
    """A machine drawn by `transitions` itself, as Mermaid, for docs/lifecycle.md."""
    from transitions.extensions.diagrams import GraphMachine

    class _Drawing:
        get_graph: Any

    drawing = _Drawing()
    GraphMachine(
        model=drawing,
        initial=initial.value,
        graph_engine="mermaid",
        title=title,
        **_machine_tables(states, table),
    )
    return str(drawing.get_graph().draw(None))
