"""Who holds a lock file, read from /proc/locks: a probe that never takes the lock itself.

Testing a lock by acquiring and releasing it races the process it tests: a controller starting
in that instant fails its own `acquire(timeout=0)` and exits. /proc/locks lists every flock and
POSIX lock with its holder's pid and the file's device and inode, so the holder can be found
without touching the lock.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC_LOCKS = "/proc/locks"


def lock_holders(path: Path, proc_locks: str = _PROC_LOCKS) -> set[int] | None:
    """Pids holding a lock on `path` (empty: nobody); None when /proc/locks cannot be read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return set()
    try:
        with open(proc_locks, encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2147143 0 EOF"; waiters have "->" after the id.
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == device:
            holders.add(int(fields[4]))
    return holders
