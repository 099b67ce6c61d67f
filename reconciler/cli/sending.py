"""What `orch send` does once its words are read: the click command (in `messaging`) and `entry`'s
fast path for its plain shape (`send AGENT TEXT`) both call `send_message`, so the two print the
same; nothing here imports click."""

from __future__ import annotations

import sys

from reconciler.api.duration import format_duration
from reconciler.api.errors import InvalidInput, NotFound, OrchError
from reconciler.api.status import AgentState
from reconciler.cli.arguments import duration_option
from reconciler.cli.console import echo
from reconciler.cli.installation import Installation, wait_for
from reconciler.core.sanitize import check_size, sanitize

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    # types only: `orch --help` lists every verb without opening a store
    from reconciler.adapters.store import StoredObject


def send_message(
    inst: Installation,
    agent: str,
    text: str | None,
    sender: str | None = None,
    wait: bool = False,
    timeout: str = "10m",
) -> None:
    """`orch send AGENT [TEXT] [--from AGENT] [--wait] [--timeout DURATION]`: queue TEXT (or
    standard input, for - or no TEXT) for AGENT, start or wake the controller."""
    limit = duration_option("--timeout", timeout)
    if text is None or text == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            raise InvalidInput(f"send: the message is not UTF-8 (byte {err.start})") from None
    check_size(text)
    message = sanitize(text)
    if not message.text.strip():
        raise InvalidInput("send: the message is empty")
    sender = _sender(inst, sender)
    recipient = _check_route(inst, sender, agent)
    _check_will_run(inst, agent)
    if message.removed:
        echo(f"orch: warning: removed {message.removed} control characters", err=True)
    message_id = inst.store.enqueue(agent, sender or "user", message.text, recipient.uid)
    echo(f"message/{message_id} queued for agent/{agent}")
    inst.start_controller()
    if wait:
        echo(
            f"waiting up to {format_duration(limit)} for agent/{agent} to take message/"
            f"{message_id} (Ctrl-C stops waiting; the message stays queued)",
            err=True,
        )
        _wait_delivered(inst, message_id, limit)
        echo(f"message/{message_id} delivered")


def _sender(inst: Installation, given: str | None) -> str | None:
    """Who sends: inside an agent of this installation (its process tree, see `sender`) that
    agent, whatever --from or its environment says, so talksTo cannot be walked around."""
    from reconciler.cli.sender import calling_agent

    inside = calling_agent(inst.store.agent_records(), inst.state_dir)
    if inside is None:
        return given
    if given is not None and given != inside:
        raise InvalidInput(
            f'--from {given}: this command runs inside agent "{inside}" and sends as "{inside}"'
        )
    return inside


def _check_route(inst: Installation, sender: str | None, agent: str) -> StoredObject:
    """The recipient, which exists, and whom a named sender's talksTo (if any) includes."""
    recipient = inst.store.object("Agent", agent)
    if recipient is None:
        raise NotFound(f'agent "{agent}" not found')
    if sender is None:
        return recipient
    origin = inst.store.object("Agent", sender)
    if origin is None:
        raise NotFound(f'--from: agent "{sender}" not found')
    allowed = origin.document["spec"].get("talksTo") or []
    if allowed and agent not in allowed:
        raise InvalidInput(
            f'agent "{sender}" may not address "{agent}" (talksTo: {", ".join(allowed)})'
        )
    return recipient


def _check_will_run(inst: Installation, agent: str) -> None:
    """Refuse a message for an agent that will never run again: it could never be delivered."""
    record = inst.store.agent_record(agent)
    stored = inst.store.object("Agent", agent)
    if record is None or stored is None or record.state is not AgentState.STOPPED:
        return
    policy = stored.document["spec"].get("restartPolicy", "Always")
    held = record.reason == "StoppedByUser"
    finished = record.reason in ("Completed", "Exited") and (
        policy == "Never" or (policy == "OnFailure" and record.exit_code == 0)
    )
    if held or finished:
        why = record.message.split(";")[0] or record.reason
        raise InvalidInput(
            f'agent "{agent}" is Stopped and will not run again ({why}); the message would never'
            f" be delivered: `orch start agent {agent}` starts it"
        )


def _wait_delivered(inst: Installation, message_id: int, limit: float) -> None:
    """Wait until the message left the queue; an error unless the agent took it."""
    from reconciler.api.messages import FINISHED, Phase

    def finished() -> bool:
        message = inst.store.message(message_id)
        return message is None or message.phase in FINISHED

    wait_for(finished, limit, f"message/{message_id} was not delivered (still queued)")
    message = inst.store.message(message_id)
    if message is not None and message.phase is not Phase.DELIVERED:
        raise OrchError(f"message/{message_id} is {message.phase}: see orch describe agent")
