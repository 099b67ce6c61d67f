"""Playbook runs: `run` starts one, `approve` passes its approval gate, `step done` is the
agent saying its step's work is written."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from reconciler.api.errors import InvalidInput, NotFound
from reconciler.cli.completion import complete_playbooks, complete_runs
from reconciler.cli.installation import Installation
from reconciler.cli.options import installation, installation_options

if TYPE_CHECKING:
    # types only: `orch --help` lists every verb without opening a store
    from reconciler.adapters.store_rows import StoredRun


def existing_run(inst: Installation, name: str) -> StoredRun:
    """The run called `name`, or NotFound."""
    run = inst.store.run(name)
    if run is None:
        raise NotFound(f'run "{name}" not found')
    return run


@click.command("run")
@installation_options
@click.argument("playbook", shell_complete=complete_playbooks)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="a parameter")
def run_playbook(playbook: str, params: tuple[str, ...]) -> None:
    """Start a run of PLAYBOOK; prints run/NAME created."""
    import secrets

    from reconciler.api.manifest import Playbook
    from reconciler.core.runs import RunRecord
    from reconciler.core.steps import validate_params

    inst = installation()
    stored = inst.store.object("Playbook", playbook)
    if stored is None:
        raise NotFound(f'playbook "{playbook}" not found')
    spec = Playbook.model_validate(stored.document).spec
    given: dict[str, str] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param: expected KEY=VALUE, got {param!r}")
        given[key] = value
    values = validate_params(spec, given, playbook=playbook)
    name = f"{playbook[:33]}-{secrets.token_hex(3)}"
    inst.store.create_run(
        RunRecord.new(name, playbook, spec, values, time.time()), stored.document["spec"]
    )
    click.echo(f"run/{name} created")
    inst.start_controller()


@click.command()
@installation_options
@click.argument("run", shell_complete=complete_runs)
@click.argument("step", required=False)
def approve(run: str, step: str | None) -> None:
    """Pass the approval gate RUN waits at (or STEP's)."""
    from reconciler.core.runs import StepPhase

    inst = installation()
    record = existing_run(inst, run).record
    current = record.current
    if (
        current is None
        or current.phase is not StepPhase.AWAITING_APPROVAL
        or (step is not None and current.name != step)
    ):
        where = f"{record.state} at step {current.name}" if current else str(record.state)
        raise InvalidInput(
            f"run {run} is not waiting for an approval of {step or 'any step'} ({where})"
        )
    inst.store.add_signal(run, "approve", current.name, current.attempt)
    inst.start_controller()
    click.echo(f"run/{run} step {current.name} approved")


@click.group()
def step() -> None:
    """Signals from agents about their playbook steps."""


@step.command("done")
@installation_options
@click.argument("run", shell_complete=complete_runs)
def step_done(run: str) -> None:
    """Say the current step of RUN is done (the agent's outputs are written)."""
    from reconciler.core.runs import StepPhase

    inst = installation()
    record = existing_run(inst, run).record
    current = record.current
    if current is None or current.phase is not StepPhase.WORKING:
        where = f"step {current.name} is {current.phase}" if current else str(record.state)
        raise InvalidInput(f"run {run} has no step in progress ({where})")
    inst.store.add_signal(run, "done", current.name, current.attempt)
    inst.start_controller()
    click.echo(f"run/{run} step {current.name} done")


COMMANDS = (run_playbook, approve, step)
