"""Results: metric rows appended by runs, and the embedded store that studies fill."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raremix.results.rows import (
    METRIC_COLUMNS,
    MetricWriter,
    load_rows,
    read_rows,
    run_id_of_dir,
)

if TYPE_CHECKING:
    from raremix.results.store import ResultStore

__all__ = [
    "METRIC_COLUMNS",
    "MetricWriter",
    "ResultStore",
    "load_rows",
    "read_rows",
    "run_id_of_dir",
]


def __getattr__(name: str) -> Any:
    # the store pulls in DuckDB and pyarrow; a run that only writes rows needs neither
    if name == "ResultStore":
        from raremix.results.store import ResultStore

        return ResultStore
    raise AttributeError(f"module 'raremix.results' has no attribute {name!r}")
