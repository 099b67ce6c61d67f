"""The only code that touches the world: tmux, SQLite, processes, git, files, systemd."""
