"""Messages to agents: `send` queues one (delivered whole, then Enter, by the controller), and
`signal` records what an agent CLI's own hooks report."""

from __future__ import annotations

import click

from reconciler.cli.completion import complete_agents
from reconciler.cli.options import installation, installation_options
from reconciler.cli.sending import send_message


@click.command()
@installation_options
@click.argument("agent", shell_complete=complete_agents)
@click.argument("text", required=False)
@click.option(
    "--from", "sender", metavar="AGENT", help="the sending agent (checked against talksTo)"
)
@click.option("--wait", is_flag=True, help="return when the message is delivered")
@click.option("--timeout", default="10m", show_default=True, help="how long --wait waits")
def send(agent: str, text: str | None, sender: str | None, wait: bool, timeout: str) -> None:
    """Queue TEXT (or standard input, with - or no TEXT) for AGENT; delivered whole, then Enter."""
    send_message(installation(), agent, text, sender, wait, timeout)


@click.command("signal")
@installation_options
@click.argument("agent")
@click.argument("event")
@click.option("--json", "payload", metavar="-|TEXT", help="the event's JSON payload (- : stdin)")
def signal_command(agent: str, event: str, payload: str | None) -> None:
    """Record a signal an agent CLI's own hook sends (turn started or ended, a question, …).

    Always exits 0 and never starts a controller: the agent's hooks call it on every turn.
    """
    from reconciler.adapters.signal_inbox import run

    run(
        [agent, event, *(("--json", payload) if payload is not None else ())],
        str(installation().state_dir),
    )


COMMANDS = (send, signal_command)
