"""The CLI's one error boundary, shared by the click CLI and `entry`'s fast path: an `OrchError`
is one line on stderr with its exit code, anything else is an internal error (its traceback kept
in the state dir's cli.log, never on the console unless `--debug`)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence

from reconciler.api.errors import OrchError
from reconciler.cli.console import echo

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from pathlib import Path

#: OS errors that say the state dir cannot be written (exit 3, one line): full, read-only, quota.
STORAGE_FAULTS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
#: Internal errors of the CLI are appended here, in the state dir, with their traceback.
CLI_LOG = "cli.log"
#: The log is cut to its newest half past this size.
CLI_LOG_MAX_BYTES = 1_000_000


def guarded(command: Callable[[], object], args: Sequence[str]) -> int:
    """Run one command of `orch ARGS`; its exit code (an int it returns, else 0)."""
    try:
        code = command()
    except KeyboardInterrupt:
        return 130
    except OrchError as err:
        echo(f"orch: error: {err}", err=True)
        return err.exit_code
    except BrokenPipeError:
        return 0
    except Exception as err:  # noqa: BLE001 - the error boundary: no tracebacks on the console
        import traceback  # only on this rare path: it costs every command's start-up

        where = _log_internal_error(list(args))
        if "--debug" in args:
            traceback.print_exc()
        hint = f"details in {where}" if where else "run again with --debug for details"
        if isinstance(err, OSError) and err.errno in STORAGE_FAULTS:  # the disk, not a bug
            echo(f"orch: error: {err.filename or 'state dir'}: {err.strerror}", err=True)
            return 3
        echo(f"orch: internal error: {type(err).__name__}: {err} ({hint})", err=True)
        return 1
    return code if isinstance(code, int) else 0


def _log_internal_error(args: list[str]) -> Path | None:
    """Append the current exception's traceback to the state dir's cli.log (never creating a
    state dir); the file written, or None."""
    state_dir = os.environ.get("ORCH_STATE_DIR") or "./state"
    for i, arg in enumerate(args):
        if arg == "--state-dir" and i + 1 < len(args):
            state_dir = args[i + 1]
        elif arg.startswith("--state-dir="):
            state_dir = arg.split("=", 1)[1]
    import traceback
    from pathlib import Path

    from reconciler.adapters.atomic import write_atomic  # only on this rare path

    path = Path(state_dir).expanduser() / CLI_LOG
    if not path.parent.is_dir():
        return None
    try:
        if path.exists() and path.stat().st_size > CLI_LOG_MAX_BYTES:
            write_atomic(path, path.read_bytes()[-CLI_LOG_MAX_BYTES // 2 :])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} orch {' '.join(args)}\n{traceback.format_exc()}\n")
    except OSError:
        return None
    return path
