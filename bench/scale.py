"""Figure 11: one controller pass at 100 / 500 / 1,000 agents, on real tmux.

Every agent is real: a tmux session started by the controller, running `sleep` (an idle agent:
no output, so after its first capture its screen is reused and a steady pass does what it does
for any quiet team: observe every pane with one `list-panes`, read the store, plan each agent,
commit). The team grows on one server (100, then 400 more, then 500 more), and at each size,
once all are Running, PASS_CALLS passes of `Controller.run_pass()` and OBSERVE_CALLS calls of
`Tmux.observe()` are timed. DESIGN.md's budget is for the observation: < 30 ms at 100 agents,
linear beyond, never failing at any size; the full pass is informational.
"""

from __future__ import annotations

from bench.observe import time_ms, time_passes
from bench.report import Budget, Figure
from bench.sandbox import StoreReader, sandbox
from reconciler.controller.loop import Controller

SIZES = (100, 500, 1000)
PASS_CALLS = 10
OBSERVE_CALLS = 20
#: The observation budget at 100 agents, scaled linearly with the team.
BUDGET_MS_PER_100 = 30.0


def run() -> list[Figure]:
    """A full-pass and an observation figure per size."""
    figures: list[Figure] = []
    with sandbox() as box:
        controller = Controller(box.state_dir, box.socket)
        reader = StoreReader(box.state_dir)
        try:
            for size in SIZES:
                # Starting the agents takes a tmux call each: allow for a loaded machine.
                timeout = 60 + size * 0.3
                figures.append(
                    time_passes(controller, reader, box.workdir, size, PASS_CALLS, timeout)
                )
                samples = time_ms(controller.tmux.observe, OBSERVE_CALLS)
                budget = Budget(BUDGET_MS_PER_100 * size / 100)
                figures.append(Figure(f"Tmux.observe(), {size} agents", "ms", samples, budget))
        finally:
            reader.close()
            for part in (controller.runner, controller.guards, controller.stopper):
                part.close()
            controller.store.close()
    return figures
