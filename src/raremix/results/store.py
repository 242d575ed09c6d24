"""The results store: an embedded directory of Parquet files, queried with DuckDB.

Layout: `ROOT/runs/<run_id>.parquet` (one row per run) and `ROOT/metrics/<run_id>.parquet`
(that run's metric rows). Both tables name the run in one column, `run_id`: the run's
one id, also its directory's name and its metric rows' `run`. Every file is written under
a temporary name and synced; then, holding the store's commit lock, the old run file is
removed, the metrics file renamed into place and the run file last. The run file is the
run's commit marker (metrics without one are invisible to queries), so a crash never
leaves a half-visible run, and two processes re-adding the same run never pair one's
metrics with the other's run row: their commits cannot interleave.

Reading is read-only: `sql` runs only SELECT statements on a connection that can
read nothing outside the store. A file damaged anyway (a disk fault, a copy cut short)
is named in one line with the fix: delete that run's files and rerun the study.

Stores written before the metrics column was `run_id` (it was `run`) are read as they
are: the `metrics` view renames the old column, so old and new files mix freely.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb
import filelock
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from raremix.errors import RaremixError, unknown
from raremix.results.rows import metric_row, rows_frame

RUN_COLUMNS = ("run_id", "study", "status", "wall_s", "error", "config")
"""Columns every run row has; axis labels and run facts add more."""
STATUSES = ("done", "failed")
TABLES = ("metrics", "runs")
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
READ_ONLY = ("SELECT",)
"""Statement types `sql` runs: a query never changes the store or writes files."""
# errors in the query itself; any other DuckDB error may come from a damaged file
_QUERY_ERRORS = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.PermissionException,
)

_METRIC_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("task", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
    ]
)
_EMPTY_RUNS = (
    "select null::varchar as run_id, null::varchar as study, null::varchar as status, "
    "null::double as wall_s, null::varchar as error, null::varchar as config where false"
)
_EMPTY_METRICS = (
    "select null::varchar as run_id, null::bigint as step, null::varchar as task, "
    "null::varchar as metric, null::double as value where false"
)


def label_column(axis: str) -> str:
    """The run-table column holding an axis's labels: `model.size` → `model_size`."""
    return re.sub(r"\W", "_", axis)


def _sql_str(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _plain(value: Any) -> Any:
    """A run-table cell: numbers and strings as they are; containers as JSON text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


COMMIT_LOCK = ".commit.lock"
"""File in the store's root whose OS lock a writer holds while it swaps one run's files."""


def _write_temp(table: pa.Table, dest: Path) -> Path:
    """Write `table`, synced, to a unique temp name beside `dest` (renamed onto it on commit)."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


class ResultStore:
    """An embedded results store in the directory `root` (created if missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in TABLES:
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """An existing store: `path` is a study directory (holding `store/`) or the store itself."""
        p = Path(path)
        for cand in (p / "store", p):
            if all((cand / sub).is_dir() for sub in TABLES):
                return cls(cand)
        raise RaremixError(
            f"{p}: no results store here: pass a study directory written by `raremix study run`"
        )

    # writing -----------------------------------------------------------------------

    def add_run(
        self,
        run_id: str,
        run_info: Mapping[str, Any],
        rows: pd.DataFrame | Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        """Store one run: its run-table row (`run_info` → columns) and its metric rows.

        `run_info` keys become columns (study, status, wall_s, error, config, labels,
        facts); dicts and lists are stored as JSON text; status defaults to "done". Rows
        without a `run` are this run's; a row naming another run is refused (one id per
        run: a row filed under the wrong id would corrupt both runs' curves). Safe to
        call from many processes at once.
        """
        if not re.fullmatch(r"[\w.-]+", run_id):
            raise RaremixError(
                f"run id {run_id!r} is not a file-safe name: use letters, digits, '_', '-', '.'"
            )
        record: dict[str, Any] = {
            "run_id": run_id,
            "study": "",
            "status": "done",
            "wall_s": math.nan,
            "error": None,
        }
        record["config"] = "{}"
        for key, value in run_info.items():
            if key == "run_id":
                raise RaremixError(
                    "run_info must not contain 'run_id': pass it as the first argument"
                )
            record[key] = _plain(value)
        if record["status"] not in STATUSES:
            raise unknown("run status", str(record["status"]), STATUSES)

        if not isinstance(rows, pd.DataFrame):
            rows = [metric_row(r, run_id) for r in rows or []]
        frame = rows_frame(rows)
        foreign = sorted(set(frame["run"].dropna()) - {run_id})
        if foreign:
            raise RaremixError(
                f"run '{run_id}': {len(foreign)} other run id(s) in its metric rows "
                f"({', '.join(map(repr, foreign[:3]))}): a run's rows carry its own id "
                "(its directory's name); store each run's rows under that id"
            )
        frame = frame.assign(run=run_id).rename(columns={"run": "run_id"})
        metrics_file = self.root / "metrics" / f"{run_id}.parquet"
        run_file = self.root / "runs" / f"{run_id}.parquet"
        temps: list[Path] = []
        try:  # the slow part, writing, runs outside the lock
            if len(frame):
                table = pa.Table.from_pandas(frame, schema=_METRIC_SCHEMA, preserve_index=False)
                temps.append(_write_temp(table, metrics_file))
            temps.append(_write_temp(pa.Table.from_pylist([record]), run_file))
            with filelock.FileLock(self.root / COMMIT_LOCK, thread_local=False):
                # uncommit first: while its metrics change, the run is absent, never torn
                run_file.unlink(missing_ok=True)
                if len(frame):
                    os.replace(temps[0], metrics_file)
                else:
                    metrics_file.unlink(missing_ok=True)
                os.replace(temps[-1], run_file)
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)

    # reading -----------------------------------------------------------------------

    def has_run(self, run_id: str) -> bool:
        """Whether `run_id` finished successfully (a failed run is rerun)."""
        path = self.root / "runs" / f"{run_id}.parquet"
        if not path.exists():
            return False
        try:
            status = pq.read_table(path, columns=["status"]).column("status")[0].as_py()
        except (pa.ArrowException, OSError, IndexError, KeyError) as err:
            raise self._damaged(path, err) from None
        return bool(status == "done")

    def finished_ids(self) -> set[str]:
        """Ids of every run that finished successfully."""
        return set(self.sql("select run_id from runs where status = 'done'")["run_id"])

    def connect(self, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with views `runs` and `metrics` over the files.

        `read_only` (the default) locks it to reading the store's own files: no file
        outside it can be read, and no file can be written (COPY … TO, ATTACH).
        """
        con = duckdb.connect()
        runs_dir, metrics_dir = self.root / "runs", self.root / "metrics"
        if any(runs_dir.glob("*.parquet")):
            glob = _sql_str(runs_dir / "*.parquet")
            con.execute(
                f"create view runs as select * from read_parquet({glob}, union_by_name = true)"
            )
        else:
            con.execute(f"create view runs as {_EMPTY_RUNS}")
        if any(metrics_dir.glob("*.parquet")):
            glob = _sql_str(metrics_dir / "*.parquet")
            files = f"read_parquet({glob}, union_by_name = true)"
            names = {row[0] for row in con.execute(f"describe select * from {files}").fetchall()}
            # stores from before `run_id` name the metrics column `run`: read both
            run = {
                frozenset({"run_id"}): "run_id",
                frozenset({"run"}): "run as run_id",
                frozenset({"run", "run_id"}): "coalesce(run_id, run) as run_id",
            }.get(frozenset(names & {"run", "run_id"}), "run_id")
            # metrics whose run file is not (yet) there are invisible: the run file commits
            con.execute(
                f"create view metrics as select * from ("
                f"select {run}, step, task, metric, value from {files}) "
                "where run_id in (select run_id from runs)"
            )
        else:
            con.execute(f"create view metrics as {_EMPTY_METRICS}")
        if read_only:
            root = _sql_str(str(self.root.resolve()) + os.sep)
            con.execute(f"set allowed_directories = [{root}]")
            con.execute("set enable_external_access = false")
            con.execute("set lock_configuration = true")
        return con

    @contextmanager
    def _session(self, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose DuckDB errors become one line: a damaged file, or the query."""
        con = None
        try:
            con = self.connect(read_only=read_only)
            yield con
        except duckdb.Error as err:
            raise self._explain(err) from None
        finally:
            if con is not None:
                con.close()

    def sql(self, query: str) -> pd.DataFrame:
        """Run a read-only SQL query (SELECT only) over the views `runs` and `metrics`."""
        with self._session() as con:
            for statement in con.extract_statements(query):
                kind = statement.type.name
                if kind not in READ_ONLY:
                    raise RaremixError(
                        f"SQL: {kind} statements are not allowed (the results store is "
                        "read-only): write a SELECT over runs and metrics; "
                        "`raremix results export` writes files"
                    )
            return con.execute(query).df()

    def runs(self) -> pd.DataFrame:
        """The run table: one row per run (ordered by run_id)."""
        return self.sql("select * from runs order by run_id")

    def metrics(self) -> pd.DataFrame:
        """All metric rows of stored runs (ordered by run_id, step, task, metric)."""
        return self.sql("select * from metrics order by run_id, step, task, metric")

    def export(
        self,
        dest: str | Path,
        fmt: Literal["parquet", "csv"] | None = None,
        table: Literal["metrics", "runs"] = "metrics",
    ) -> Path:
        """Write a table to one Parquet or CSV file (format from `fmt` or the suffix)."""
        dest = Path(dest)
        if table not in TABLES:
            raise unknown("table", table, TABLES)
        fmt = fmt or FORMATS.get(dest.suffix.lower())  # type: ignore[assignment]
        if fmt not in ("parquet", "csv"):
            raise RaremixError(
                f"cannot tell the export format of '{dest}': name it *.parquet or *.csv"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        order = "run_id, step, task, metric" if table == "metrics" else "run_id"
        options = "format parquet" if fmt == "parquet" else "format csv, header true"
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            with self._session(read_only=False) as con:
                con.execute(
                    f"copy (select * from {table} order by {order}) to {_sql_str(tmp)} ({options})"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    # damaged files -----------------------------------------------------------------

    def _explain(self, err: duckdb.Error) -> RaremixError:
        """A DuckDB error as one line: the damaged file it came from, or the query's fault."""
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if not isinstance(err, _QUERY_ERRORS):
            for path in sorted((self.root / "runs").glob("*.parquet")) + sorted(
                (self.root / "metrics").glob("*.parquet")
            ):
                try:
                    pq.read_table(path)
                except (pa.ArrowException, OSError) as bad:
                    return self._damaged(path, bad)
        return RaremixError(f"SQL error: {first}: check the query (tables: runs, metrics)")

    def _damaged(self, path: Path, err: BaseException) -> RaremixError:
        """One line naming a damaged store file and how to redo its run."""
        run = path.stem
        files = " and ".join(
            str(self.root / sub / f"{run}.parquet")
            for sub in ("runs", "metrics")
            if (self.root / sub / f"{run}.parquet").exists()
        )
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        return RaremixError(
            f"{path}: damaged results file ({first}): delete {files}, then rerun the study "
            f"(`raremix study run`) to redo run '{run}'"
        )
