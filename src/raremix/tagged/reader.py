"""Read task-tagged data — JSONL (plain, .gz, .zst), Parquet, CSV, Hugging Face datasets —
into one Arrow table (`read_tagged`), or a chunk at a time for data larger than memory
(`stream_tagged`).

Every row is checked: a task name (non-empty string), a prompt (string, may be empty)
and a response (non-empty string), or chat `messages` ending in the assistant's reply.
An invalid row is never dropped silently: it stops the read with one line naming the
file and line (JSONL) or row (other formats), or, with `skip_invalid`, it is set aside
with its reason, counted, and written to a rejected-rows JSONL.

    data = read_tagged("fcall.jsonl")                       # columns task, prompt, response, file, line
    data = read_tagged("chats/", messages="messages", skip_invalid=True, rejected_path="bad.jsonl")
    data.counts()                                           # {task: rows}, most common first
    for chunk in stream_tagged("shards/"):                  # Arrow tables of <= 8,192 rows
        ...
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from raremix.errors import RaremixError
from raremix.tagged import formats
from raremix.tagged.chat import render_plain, template_renderer
from raremix.tagged.formats import COMPRESSIONS, HUB_PREFIX
from raremix.tagged.rows import Rows
from raremix.tagged.spec import TaggedSpec

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
}
REJECTED_SUFFIX = ".rejected.jsonl"
READERS: dict[str, Callable[[str, Rows], Iterator[None]]] = {
    "jsonl": formats.read_jsonl,
    "parquet": formats.read_parquet,
    "csv": formats.read_csv,
    "hf": formats.read_hf,
}


@dataclass
class TaggedData:
    """Valid rows (`table`: task, prompt, response, file, line) and the rows set aside."""

    table: pa.Table
    """One row per valid input row, in input order; `line` is the JSONL line, or the
    1-based row number in other formats."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Invalid rows (skip_invalid only): file, line (JSONL) or row, reason, and the input."""
    files: list[str] = field(default_factory=list)
    """What was read: files, a dataset folder, or hf:NAME."""
    rejected_path: Path | None = None
    """Where the rejected rows were written, if any were."""
    not_read: list[str] = field(default_factory=list)
    """Files in a data folder that were not read: not .jsonl/.parquet/.csv (or not the
    --format given). Callers say so: nothing is left out silently."""

    @property
    def rows_read(self) -> int:
        """Input rows: valid plus rejected."""
        return self.table.num_rows + len(self.rejected)

    def counts(self) -> dict[str, int]:
        """Rows per task, most common first (ties by name)."""
        counts = Counter(self.table.column("task").to_pylist())
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def read_tagged(
    path: str | Path,
    *,
    format: str = "auto",
    task: str = "task",
    prompt: str = "prompt",
    response: str = "response",
    messages: str | None = None,
    chat_template: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
    rejected_path: str | Path | None = None,
) -> TaggedData:
    """Read and validate task-tagged data; see `TaggedSpec` for what each argument means."""
    return read_spec(
        _spec(
            path,
            format,
            task,
            prompt,
            response,
            messages,
            chat_template,
            split,
            skip_invalid,
            rejected_path,
        )
    )


def stream_tagged(
    path: str | Path,
    *,
    format: str = "auto",
    task: str = "task",
    prompt: str = "prompt",
    response: str = "response",
    messages: str | None = None,
    chat_template: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
    rejected_path: str | Path | None = None,
) -> TaggedStream:
    """`read_tagged`, a chunk at a time: the same rows, checks and errors, bounded memory."""
    return TaggedStream(
        _spec(
            path,
            format,
            task,
            prompt,
            response,
            messages,
            chat_template,
            split,
            skip_invalid,
            rejected_path,
        )
    )


def _spec(
    path: str | Path,
    format: str,
    task: str,
    prompt: str,
    response: str,
    messages: str | None,
    chat_template: str | None,
    split: str | None,
    skip_invalid: bool,
    rejected_path: str | Path | None,
) -> TaggedSpec:
    from raremix.configbase import load

    return load(
        TaggedSpec,
        {
            "path": str(path),
            "format": format,
            "task": task,
            "prompt": prompt,
            "response": response,
            "messages": messages,
            "chat_template": chat_template,
            "split": split,
            "skip_invalid": skip_invalid,
            "rejected": None if rejected_path is None else str(rejected_path),
        },
        "read_tagged",
    )


def read_spec(spec: TaggedSpec) -> TaggedData:
    """Read the data a `TaggedSpec` describes (its `path` must be set).

    Every input row ends up in `table` or in `rejected`; with skip_invalid the rejected
    rows are written out, even when no row is valid (the read then fails, naming them).
    """
    inputs, not_read = _checked_inputs(spec)
    rows = _rows(spec)
    for source, fmt in inputs:
        for _ in READERS[fmt](source, rows):
            pass
    table = rows.table()
    data = TaggedData(table, rows.rejected, [source for source, _ in inputs], not_read=not_read)
    if rows.rejected:
        data.rejected_path = write_rejected(rows.rejected, _rejected_path(spec))
    if table.num_rows == 0:
        first = rows.rejected[0] if rows.rejected else None
        raise _none_valid(spec, len(rows.rejected), first, data.rejected_path)
    return data


class TaggedStream:
    """Task-tagged rows read a chunk at a time, for data larger than memory.

    Iterating yields Arrow tables (task, prompt, response, file, line) of at most
    `formats.CHUNK_ROWS` rows (a CSV file: its rows, whole), in input order: the rows
    `read_tagged` would return, checked the same way, stopping at the same first invalid
    row with the same `file:line` error. With skip_invalid, rejected rows go to the
    rejected-rows file as they come. Counts are complete once the iteration ends; each
    iteration reads the data again from the start.
    """

    def __init__(self, spec: TaggedSpec) -> None:
        self.spec = spec
        inputs, self.not_read = _checked_inputs(spec)  # a bad path fails now, not mid-stream
        self.inputs = inputs
        self.files = [source for source, _ in inputs]
        self.task_counts: Counter[str] = Counter()
        """Valid rows per task, so far."""
        self.rejected = 0
        """Rows set aside so far (skip_invalid)."""
        self.rejected_path: Path | None = None
        """Where the rejected rows were written, once the iteration has ended (if any were)."""

    @property
    def rows_read(self) -> int:
        """Input rows so far: valid plus rejected."""
        return sum(self.task_counts.values()) + self.rejected

    def counts(self) -> dict[str, int]:
        """Rows per task, most common first (ties by name): as `TaggedData.counts`."""
        return dict(sorted(self.task_counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def __iter__(self) -> Iterator[pa.Table]:
        self.task_counts, self.rejected, self.rejected_path = Counter(), 0, None
        rows = _rows(self.spec)
        target = _rejected_path(self.spec)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        first: dict[str, Any] | None = None
        try:
            with _Rejects(tmp) as rejects:
                for source, fmt in self.inputs:
                    for _ in chain(READERS[fmt](source, rows), [None]):  # and a drain at the end
                        chunks, rejected = rows.drain()
                        first = first or (rejected[0] if rejected else None)
                        self.rejected += rejects.write(rejected)
                        for chunk in chunks:
                            if chunk.num_rows:
                                self.task_counts.update(chunk.column("task").to_pylist())
                                yield chunk
            if self.rejected:
                os.replace(tmp, target)
                self.rejected_path = target
            if not self.task_counts:
                raise _none_valid(self.spec, self.rejected, first, self.rejected_path)
        finally:
            tmp.unlink(missing_ok=True)  # a stream abandoned midway leaves no half file


class _Rejects:
    """Rejected rows appended to a JSONL file as they come (opened on the first one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None

    def __enter__(self) -> _Rejects:
        return self

    def write(self, rejected: list[dict[str, Any]]) -> int:
        if rejected:
            if self.file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.file = self.path.open("w", encoding="utf-8", errors="backslashreplace")
            self.file.writelines(
                json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rejected
            )
        return len(rejected)

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _checked_inputs(spec: TaggedSpec) -> tuple[list[tuple[str, str]], list[str]]:
    if not spec.path:
        raise RaremixError("data: no path: give the data file or folder (--data PATH)")
    inputs, not_read = _inputs(spec)
    if spec.skip_invalid:
        _check_rejected_path(_rejected_path(spec), spec, inputs)
    return inputs, not_read


def _rows(spec: TaggedSpec) -> Rows:
    render = render_plain if spec.chat_template is None else template_renderer(spec.chat_template)
    return Rows(spec, render)


def _none_valid(
    spec: TaggedSpec, rejected: int, first: Mapping[str, Any] | None, written: Path | None
) -> RaremixError:
    if first is None:
        return RaremixError(f"{spec.path}: has no rows: give a file with task-tagged rows")
    return RaremixError(
        f"{spec.path}: none of its {rejected} rows is valid (first: {_where(first)}: "
        f"{first['reason']}; all are in {written}): check the column mapping"
    )


def write_rejected(rejected: list[dict[str, Any]], path: Path) -> Path:
    """Write rejected rows as JSONL (one object per row: file, line|row, reason, input).

    Written under a temporary name and renamed, so a crash leaves the old file or the
    new one. A lone surrogate (from a JSON escape like "\\ud800") is written as that
    escape, so the file stays valid UTF-8 and reads back to the same text.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", errors="backslashreplace") as f:
            f.writelines(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rejected)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _where(rejected: Mapping[str, Any]) -> str:
    return (
        f"{rejected['file']}:{rejected['line']}"
        if "line" in rejected
        else f"{rejected['file']}: row {rejected['row']}"
    )


def _rejected_path(spec: TaggedSpec) -> Path:
    if spec.rejected:
        return Path(spec.rejected)
    path = str(spec.path)
    if path.startswith(HUB_PREFIX):
        name = path.removeprefix(HUB_PREFIX).replace("/", "_")
    else:
        name = Path(path).name
    return Path(name + REJECTED_SUFFIX)


def _check_rejected_path(target: Path, spec: TaggedSpec, inputs: list[tuple[str, str]]) -> None:
    """Refuse a rejected-rows path that would overwrite an input or be read as data."""
    for source, _ in inputs:
        if source.startswith(HUB_PREFIX):
            continue
        if target.resolve() == Path(source).resolve() or (
            target.exists() and os.path.samefile(target, source)
        ):
            raise RaremixError(
                f"rejected-rows path {target} is the input {source}: writing rejected rows "
                "there would overwrite the data: pass another --rejected path"
            )
    root = Path(str(spec.path))
    if (
        not str(spec.path).startswith(HUB_PREFIX)
        and root.is_dir()
        and target.resolve().is_relative_to(root.resolve())
        and not target.name.lower().endswith(REJECTED_SUFFIX)
    ):
        raise RaremixError(
            f"rejected-rows path {target} is inside the data folder {root} and would be read "
            f"as data next time: pass a --rejected path outside it, or end it in {REJECTED_SUFFIX}"
        )


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _format_of(path: Path) -> str | None:
    """The format a file's suffix names, whatever its case (DATA.JSONL is JSONL); a
    compressed file (.gz, .zst) is JSONL when the suffix before it is."""
    if path.suffix.lower() in COMPRESSIONS:
        inner = SUFFIXES.get(Path(path.stem).suffix.lower())
        return inner if inner == "jsonl" else None
    return SUFFIXES.get(path.suffix.lower())


def _inputs(spec: TaggedSpec) -> tuple[list[tuple[str, str]], list[str]]:
    """(file or dataset, format) pairs to read, in order, and a folder's files not read."""
    assert spec.path is not None
    if spec.path.startswith(HUB_PREFIX):
        return [(spec.path, "hf")], []
    path = Path(spec.path)
    if not path.exists():
        raise RaremixError(
            f"{path}: no such file or folder: check the path (a hub dataset is written hf:NAME)"
        )
    if path.is_dir():
        if spec.format == "hf" or (spec.format == "auto" and _is_saved_dataset(path)):
            return [(str(path), "hf")], []
        return _folder_inputs(path, spec.format)
    _check_name(path)
    if spec.format == "auto":
        fmt = _format_of(path)
        if fmt is None:
            raise RaremixError(
                f"{path}: unknown format '{path.suffix}': rename it to .jsonl, .parquet or .csv "
                "(compressed: .jsonl.gz, .jsonl.zst), or pass --format jsonl|parquet|csv"
            )
        return [(str(path), fmt)], []
    if spec.format == "hf":
        raise RaremixError(f"{path}: --format hf needs a folder written by save_to_disk or hf:NAME")
    return [(str(path), spec.format)], []


def _folder_inputs(folder: Path, format: str) -> tuple[list[tuple[str, str]], list[str]]:
    """A folder's data files (all formats, or only `format`) and the other files in it.

    Hidden files and folders (.cache, .DS_Store) and earlier rejected-rows files are
    neither data nor reported.
    """
    inputs, not_read = [], []
    for p in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
        if hidden or p.is_dir() or p.name.lower().endswith(REJECTED_SUFFIX):
            continue
        _check_name(p)
        fmt = _format_of(p)
        if p.is_file() and fmt is not None and format in ("auto", fmt):  # not a broken link
            inputs.append((str(p), fmt))
        else:
            not_read.append(str(p))
    if not inputs:
        wanted = ".jsonl(.gz|.zst), .parquet or .csv" if format == "auto" else f".{format}"
        raise RaremixError(f"{folder}: holds no {wanted} files: point --data at the data")
    return inputs, not_read


def _check_name(path: Path) -> None:
    """A file name that is not UTF-8 cannot be recorded in the `file` column."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise RaremixError(f"{str(path)!a}: the file name is not UTF-8: rename it") from None
