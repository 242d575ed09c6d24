"""Read task-tagged data — JSONL, Parquet, CSV, Hugging Face datasets — into one Arrow table.

Every row is checked: a task name (non-empty string), a prompt (string, may be empty)
and a response (non-empty string), or chat `messages` ending in the assistant's reply.
An invalid row is never dropped silently: it stops the read with one line naming the
file and line (JSONL) or row (other formats), or, with `skip_invalid`, it is set aside
with its reason, counted, and written to a rejected-rows JSONL.

    data = read_tagged("fcall.jsonl")                       # columns task, prompt, response, file, line
    data = read_tagged("chats/", messages="messages", skip_invalid=True, rejected_path="bad.jsonl")
    data.counts()                                           # {task: rows}, most common first
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from raremix.errors import RaremixError, did_you_mean
from raremix.tagged.chat import render_plain, template_renderer
from raremix.tagged.rows import COLUMNS, Rows, all_valid
from raremix.tagged.spec import TaggedSpec

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
}
REJECTED_SUFFIX = ".rejected.jsonl"
HUB_PREFIX = "hf:"


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
    from raremix.configbase import load

    spec = load(
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
    return read_spec(spec)


def read_spec(spec: TaggedSpec) -> TaggedData:
    """Read the data a `TaggedSpec` describes (its `path` must be set)."""
    if not spec.path:
        raise RaremixError("data: no path: give the data file or folder (--data PATH)")
    render = render_plain if spec.chat_template is None else template_renderer(spec.chat_template)
    rows = Rows(spec, render)
    files = []
    for source, fmt in _inputs(spec):
        files.append(source)
        if fmt == "jsonl":
            _read_jsonl(Path(source), rows)
        else:
            _read_arrow(_arrow(source, fmt, spec), source, rows)
    table = rows.table()
    data = TaggedData(table, rows.rejected, files)
    if table.num_rows == 0:
        shown = spec.path
        if not rows.rejected:
            raise RaremixError(f"{shown}: has no rows: give a file with task-tagged rows")
        raise RaremixError(
            f"{shown}: none of its {len(rows.rejected)} rows is valid (first: {_where(rows.rejected[0])}: "
            f"{rows.rejected[0]['reason']}): check the column mapping"
        )
    if rows.rejected:
        data.rejected_path = write_rejected(rows.rejected, _rejected_path(spec))
    return data


def write_rejected(rejected: list[dict[str, Any]], path: Path) -> Path:
    """Write rejected rows as JSONL (one object per row: file, line|row, reason, input)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.writelines(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rejected)
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


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _inputs(spec: TaggedSpec) -> list[tuple[str, str]]:
    """(file or dataset, format) pairs to read, in order."""
    assert spec.path is not None
    if spec.path.startswith(HUB_PREFIX):
        return [(spec.path, "hf")]
    path = Path(spec.path)
    if not path.exists():
        raise RaremixError(
            f"{path}: no such file or folder: check the path (a hub dataset is written hf:NAME)"
        )
    if path.is_dir():
        if spec.format == "hf" or (spec.format == "auto" and _is_saved_dataset(path)):
            return [(str(path), "hf")]
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not p.name.endswith(REJECTED_SUFFIX)
            and (
                p.suffix in SUFFIXES
                if spec.format == "auto"
                else p.suffix.lstrip(".") == spec.format
            )
        )
        if not files:
            raise RaremixError(
                f"{path}: holds no .jsonl, .parquet or .csv files: point --data at the data"
            )
        return [(str(p), SUFFIXES.get(p.suffix, spec.format)) for p in files]
    if spec.format == "auto":
        fmt = SUFFIXES.get(path.suffix)
        if fmt is None:
            raise RaremixError(
                f"{path}: unknown format '{path.suffix}': rename it to .jsonl, .parquet or .csv, "
                "or pass --format jsonl|parquet|csv"
            )
        return [(str(path), fmt)]
    if spec.format == "hf":
        raise RaremixError(f"{path}: --format hf needs a folder written by save_to_disk or hf:NAME")
    return [(str(path), spec.format)]


def _read_jsonl(path: Path, rows: Rows) -> None:
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue  # a blank line holds no row
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                shown = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                rows.reject(
                    str(path), n, "line", f"is not UTF-8 ({err.reason}): re-encode the file", shown
                )
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                rows.reject(str(path), n, "line", f"not valid JSON ({err.msg}): fix the line", text)
                continue
            if not isinstance(obj, dict):
                rows.reject(
                    str(path),
                    n,
                    "line",
                    f"is a JSON {type(obj).__name__}, not an object: write one object per line",
                    text,
                )
                continue
            rows.add(obj, str(path), n, "line", text)


def _read_arrow(table: pa.Table, source: str, rows: Rows) -> None:
    spec = rows.spec
    roles = ("task", "messages") if spec.messages is not None else ("task", "prompt", "response")
    names = [str(getattr(spec, r)) for r in roles]
    for role, name in zip(roles, names, strict=True):
        if name not in table.column_names:
            raise RaremixError(
                f"{source}: no column '{name}' for the {role} "
                f"({did_you_mean(name, table.column_names)}): map it with --{role}-col"
            )
    if spec.messages is None and all_valid(table, *names):
        n = table.num_rows
        columns = [table.column(c).cast(pa.string()) for c in names]
        columns += [pa.array([source] * n, pa.string()), pa.array(range(1, n + 1), pa.int64())]
        rows.add_valid(pa.Table.from_arrays(columns, schema=pa.schema(COLUMNS)))
        return
    columns = [table.column(n).to_pylist() for n in names]  # row by row, to name each problem
    for i, values in enumerate(zip(*columns, strict=True), 1):
        obj = dict(zip(names, values, strict=True))
        rows.add(obj, source, i, "row", obj)


def _arrow(source: str, fmt: str, spec: TaggedSpec) -> pa.Table:
    """A Parquet, CSV or Hugging Face dataset as an Arrow table."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(source)
        except (pa.ArrowInvalid, OSError) as err:
            raise RaremixError(
                f"{source}: not a readable Parquet file ({err}): check the file"
            ) from None
    if fmt == "csv":
        import pyarrow.csv as pcsv

        text_cols = [spec.task, spec.prompt, spec.response, spec.messages or spec.task]
        options = pcsv.ConvertOptions(column_types=dict.fromkeys(text_cols, pa.string()))
        try:
            return pcsv.read_csv(source, convert_options=options)
        except (pa.ArrowInvalid, OSError) as err:
            raise RaremixError(
                f"{source}: not a readable CSV file ({err}): check the file"
            ) from None
    return _hf_table(source, spec.split)


def _hf_table(source: str, split: str | None) -> pa.Table:
    """A saved (save_to_disk) or hub dataset's split as an Arrow table."""
    try:
        import datasets
    except ImportError:
        raise RaremixError(
            f"{source}: reading Hugging Face datasets needs `datasets`: pip install 'raremix[hf]'"
        ) from None
    if source.startswith(HUB_PREFIX):
        name = source.removeprefix(HUB_PREFIX)
        try:
            ds: Any = datasets.load_dataset(name, split=split or "train")
        except Exception as err:  # network, auth, or a bad name: datasets raises many types
            raise RaremixError(
                f"{source}: cannot load from the hub ({str(err).splitlines()[0][:160]}): "
                "check the name and the network, or save it to disk and pass the folder"
            ) from None
    else:
        ds = datasets.load_from_disk(source)
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        chosen = split or ("train" if "train" in ds else splits[0] if len(splits) == 1 else None)
        if chosen is None or chosen not in ds:
            hint = did_you_mean(chosen, splits) if chosen else f"choose one of: {', '.join(splits)}"
            raise RaremixError(f"{source}: which split? {hint}: pass --split NAME")
        ds = ds[chosen]
    table: pa.Table = ds.with_format("arrow")[:]
    return table
