"""Metric rows: raremix's one result format, appended to a run's `metrics.jsonl`.

A row is `{run, step, task, metric, value}` (task "" or "all" for run-level metrics).
`run` is the run's one id: the name of its directory (`run_id_of_dir`), which is also
the id a study's results store files it under.
A run appends rows while it trains; a row counts once its line (with the newline) is
on disk, so a crash mid-write leaves at most one torn last line, which readers drop.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raremix.errors import RaremixError

if TYPE_CHECKING:
    import pandas as pd  # imported where used: run processes need no pandas to write rows

METRIC_COLUMNS = ("run", "step", "task", "metric", "value")
METRICS_FILE = "metrics.jsonl"


def run_id_of_dir(run_dir: str | Path) -> str:
    """A run's id: the name of its directory (`runs/3f9c0a1b2d4e/` → `3f9c0a1b2d4e`)."""
    return Path(os.path.abspath(run_dir)).name  # abspath, not resolve: a symlink keeps its name


def metric_row(row: Mapping[str, Any], run: str = "") -> dict[str, Any]:
    """A clean row with exactly the metric columns and their types (`run` filled if absent)."""
    missing = [c for c in METRIC_COLUMNS if c not in row and not (c == "run" and run)]
    if missing:
        raise RaremixError(
            f"metric row {dict(row)!r} lacks {missing}: give run, step, task, metric, value"
        )
    return {
        "run": str(row.get("run") or run),
        "step": int(row["step"]),
        "task": str(row["task"]),
        "metric": str(row["metric"]),
        "value": float(row["value"]),
    }


def metric_rows(
    step: int, entries: Iterable[tuple[str, str, float]], run: str = ""
) -> list[dict[str, Any]]:
    """Clean rows at `step` of `(task, metric, value)` entries, in their order: the one place
    outside the reader that spells a row, so every writer's rows have the same columns."""
    return [
        metric_row({"run": run, "step": step, "task": task, "metric": metric, "value": value})
        for task, metric, value in entries
    ]


def _complete_lines(path: Path) -> list[bytes]:
    """The file's lines that end with a newline (a torn last line is left out)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines()


def _parse(line: bytes, path: Path, lineno: int) -> dict[str, Any]:
    try:
        return metric_row(json.loads(line))
    except (ValueError, TypeError, KeyError, RaremixError) as err:
        raise RaremixError(
            f"{path}:{lineno}: not a metric row ({err}): the file is corrupt; delete the run's directory to rerun it"
        ) from None


class MetricWriter:
    """Appends metric rows to a JSONL file, each write straight to disk (no buffer).

    `run` defaults to the id of the file's directory (`run_id_of_dir`).
    Opening repairs a torn last line left by a crash. Use as a context manager or `close()`.
    `listeners` are called with each batch of rows once it is on disk (trackers).
    """

    def __init__(self, path: str | Path, run: str | None = None) -> None:
        self.path = Path(path)
        self.run = run_id_of_dir(self.path.parent) if run is None else run
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._file = self._open()
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []

    def _open(self) -> io.FileIO:
        # unbuffered: a failed write leaves no bytes in a buffer to land later, mid-file
        return io.FileIO(self.path, "ab")

    def _repair(self) -> None:
        """Cut a torn last line (no newline) so appends start on a fresh line."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            end = f.read().rfind(b"\n") + 1
            f.truncate(end)

    def write(self, rows: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Append one row or several (each row is one line), straight to the file.

        A failed write (disk full, permission denied) is one `RaremixError`, and the
        file is cut back to the rows before this call: no torn line is left mid-file."""
        batch = [metric_row(r, self.run) for r in ([rows] if isinstance(rows, Mapping) else rows)]
        data = memoryview("".join(json.dumps(r) + "\n" for r in batch).encode())
        end = self._file.seek(0, os.SEEK_END)
        try:
            while data:
                data = data[self._file.write(data) :]
        except OSError as err:
            with contextlib.suppress(OSError):  # cut the part-written rows: the earlier ones stand
                os.ftruncate(self._file.fileno(), end)
            raise RaremixError(
                f"cannot append metric rows to {self.path} ({err.strerror or err}); the rows "
                "written before are intact: free disk space or fix permissions, then rerun to resume"
            ) from None
        for listener in self.listeners:
            listener(batch)

    def log(self, step: int, task: str, metric: str, value: float) -> None:
        """Append one row for this writer's run."""
        self.write(metric_rows(step, [(task, metric, value)], self.run))

    def log_metrics(self, step: int, metrics: Mapping[str, Mapping[str, float]]) -> None:
        """Append {task: {metric: value}} at `step` for this writer's run, in one write
        (task "" for run-level metrics)."""
        entries = ((t, m, v) for t, values in metrics.items() for m, v in values.items())
        self.write(metric_rows(step, entries, self.run))

    def truncate_after(self, step: int) -> None:
        """Drop rows with a step past `step` (resume from a checkpoint: no duplicates).

        `truncate_after(-1)` empties the file (a fresh start). The rewrite is atomic.
        """
        self._file.close()
        try:
            self._rewrite(step)
        finally:
            self._file = self._open()

    def _rewrite(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [
            line
            for i, line in enumerate(_complete_lines(self.path), 1)
            if line.strip() and _parse(line, self.path, i)["step"] <= step
        ]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(b"".join(line + b"\n" for line in kept))
            os.replace(tmp, self.path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise RaremixError(
                f"cannot rewrite {self.path} ({err.strerror or err}); it is unchanged: "
                "free disk space or fix permissions, then rerun"
            ) from None

    def close(self) -> None:
        """Close the file (every row is already written)."""
        self._file.close()

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def empty_rows() -> pd.DataFrame:
    """A metric-row frame with no rows and the standard columns and types."""
    return rows_frame([])


def rows_frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Metric rows as a DataFrame with the standard columns and dtypes."""
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        frame = rows.reindex(columns=list(METRIC_COLUMNS))
    else:
        frame = pd.DataFrame(list(rows), columns=list(METRIC_COLUMNS))
    return frame.astype({"step": "int64", "value": "float64"})


def load_rows(path: str | Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The rows of a `metrics.jsonl` as dicts (see `read_rows`)."""
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise RaremixError(f"{p}: no such metrics file: check the run directory")
    return [_parse(line, p, i) for i, line in enumerate(_complete_lines(p), 1) if line.strip()]


def read_rows(path: str | Path, missing_ok: bool = False) -> pd.DataFrame:
    """Read a `metrics.jsonl` into a DataFrame (run, step, task, metric, value).

    A torn last line (a crash mid-write) is dropped; a malformed line elsewhere is an error.
    """
    return rows_frame(load_rows(path, missing_ok))
