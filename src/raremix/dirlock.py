"""One writer per folder: an OS file lock on a run directory or study folder while a process writes it.

    with dir_lock(run_dir, "run directory"):
        ...  # train, write rows and checkpoints

The lock is `filelock`'s: `flock` on POSIX, `LockFileEx` on Windows. The OS releases it
when its process ends, however it ends (SIGKILL included), so a killed writer never
leaves a folder locked. Beside the lock file the holder writes `.raremix-lock.json`
(pid, host, start time, command) so that a second writer is told who holds the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from raremix.errors import RaremixError

LOCK_FILE = ".raremix.lock"
INFO_FILE = ".raremix-lock.json"


def _holder(folder: Path) -> str:
    """Who holds `folder`'s lock, from its info file, in words."""
    try:
        info: dict[str, Any] = json.loads((folder / INFO_FILE).read_text())
    except (OSError, ValueError):  # the holder has not written it yet, or it is torn
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"pid {info.get('pid')} on {info.get('host')} (since {since}: {info.get('command')})"


@contextlib.contextmanager
def dir_lock(folder: str | Path, what: str = "folder", *, enabled: bool = True) -> Iterator[None]:
    """Hold `folder`'s write lock for the block; raise `RaremixError` at once if another process holds it.

    `what` names the folder in the message ("run directory", "study folder"). With
    `enabled=False` nothing is locked (e.g. on non-zero ranks of a distributed run).
    """
    if not enabled:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(folder / LOCK_FILE, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RaremixError(
            f"{what} {folder} is being written by {_holder(folder)}: wait for it to finish, "
            "or write to another folder"
        ) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.time(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200],
    }
    tmp = folder / f"{INFO_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / INFO_FILE)  # readers never see a torn file
    try:
        yield
    finally:
        (folder / INFO_FILE).unlink(missing_ok=True)
        lock.release()
