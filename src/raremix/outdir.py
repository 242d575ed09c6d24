"""Output folders (run, study, shard and report directories): checked before work starts.

`check_output_dir` fails in one line when a folder cannot be made or written (it is a
file, sits under a file, or under a folder without write permission) and creates
nothing, so a refused command leaves no empty directory behind; `make_output_dir`
creates it when the work has something to write.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from raremix.errors import RaremixError


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """`path`, if it is (or can become) a folder raremix can write in; creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RaremixError(f"{what} {path}: is a file, not a folder: give a folder path")
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise RaremixError(f"{what} {path}: {existing} is a file, not a folder: give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RaremixError(
            f"{what} {path}: cannot write in {existing} (permission denied): "
            "choose a folder you can write to"
        )
    return path


def make_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Create `path` (and its parents) after `check_output_dir`; OS refusals become one line."""
    path = check_output_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RaremixError(
            f"{what} {path}: cannot create it ({err.strerror}): choose a folder you can write to"
        ) from None
    return path


def write_file(path: str | Path, text: str, what: str = "file") -> Path:
    """Write `text` to `path` atomically (a temp file, fsynced, then `os.replace`).

    A reader, or a run killed mid-write, sees the old file or the new one, never half;
    a failed write (full disk, permissions) is one line naming the file, and the old
    file is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RaremixError(
            f"{what} {path}: cannot write it ({err.strerror or err}): free some space or fix "
            "the folder's permissions, then rerun to resume"
        ) from None
    return path
