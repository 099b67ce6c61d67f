"""About orch itself: its version, the manifests' JSON Schema, and shell completion."""

from __future__ import annotations

import click

from reconciler.cli.completion import completion_script
from reconciler.cli.output import to_json


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL, names of agents, runs and playbooks included.

    bash: `source <(orch completion bash)` (or write it to ~/.local/share/bash-completion/
    completions/orch); zsh: `source <(orch completion zsh)`; fish: `orch completion fish >
    ~/.config/fish/completions/orch.fish`."""
    root = click.get_current_context().find_root().command
    assert isinstance(root, click.Group)
    click.echo(completion_script(root, shell))


@click.command()
def version() -> None:
    """Versions of orch, tmux and Python."""
    import importlib.metadata
    import platform

    from reconciler.adapters.tmux import Tmux

    click.echo(f"orch {importlib.metadata.version('orch')}")
    click.echo(f"tmux {Tmux('orch').version() or 'not installed (apt-get install tmux)'}")
    click.echo(f"python {platform.python_version()}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of manifests, for editors."""
    from reconciler.api.manifest import manifest_json_schema

    click.echo(to_json(manifest_json_schema()))


COMMANDS = (completion, version, schema)
