"""orch: a Kubernetes-operator-style supervisor for command-line AI coding agents in tmux."""

__version__ = "0.1.0"
