"""Temporary files for atomic writes, and the cleaning up after writers that died.

A file is written under a temporary name next to its target, then renamed over it, so
a reader never sees half a file. The name, ``.{target}.{pid}.{token}.{suffix}``, says
which process wrote it: one left by a process that no longer runs (killed mid-write)
can be removed by the next writer.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

__all__ = ["remove_stale_temporaries", "temporary_path"]


def temporary_path(target: Path, suffix: str) -> Path:
    """A fresh temporary name for ``target`` in its directory (so a rename replaces it)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{suffix}")


def remove_stale_temporaries(target: Path, suffix: str) -> None:
    """Delete the :func:`temporary_path` files of ``target`` whose writers are dead.

    One whose pid is alive (another write in progress, or a process that reused the pid) is
    kept. A process on another machine sharing the directory looks dead here: writing one
    target from two machines at once is not supported. Cleaning up is a courtesy, so its
    errors are ignored.
    """
    if os.name != "posix":  # on Windows os.kill(pid, 0) would terminate the process
        return
    name = re.compile(rf"\.{re.escape(target.name)}\.([0-9]+)\.[0-9a-f]{{8}}\.{re.escape(suffix)}")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = name.fullmatch(entry.name)
        if match and not _may_be_running(int(match[1])):
            with contextlib.suppress(OSError):
                entry.unlink()


def _may_be_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or not a pid at all
        return True
    return True
