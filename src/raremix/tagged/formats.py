"""One reader per format: JSONL, Parquet, CSV and Hugging Face datasets, each feeding `Rows`.

Every input row reaches `Rows` as valid or rejected — none is skipped — so rows in =
accepted + rejected. A JSONL row is a line split on `\\n` only (not on form feeds or
Unicode line separators, which may sit inside a row); a line holding only JSON
whitespace is blank and holds no row. A CSV record with the wrong number of fields is
rejected by its line. A file that cannot be read at all stops with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from raremix.errors import RaremixError, did_you_mean
from raremix.tagged.rows import COLUMNS, Rows, all_valid
from raremix.tagged.spec import TaggedSpec

HUB_PREFIX = "hf:"
_JSON_SPACE = b" \t\r\n"  # JSON's whitespace; a \f or \v line is not blank but invalid


def _first_line(err: BaseException) -> str:
    """An exception's message as one short line."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def read_jsonl(source: str, rows: Rows) -> None:
    """Every non-blank line of a JSONL file as a row: valid, or rejected by its line number."""
    path = Path(source)
    try:
        _read_jsonl_lines(path, rows)
    except OSError as err:
        raise RaremixError(
            f"{path}: cannot read it ({err.strerror or _first_line(err)}): check the file"
        ) from None


def _read_jsonl_lines(path: Path, rows: Rows) -> None:
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):  # binary lines end at b"\n" only
            if not raw.strip(_JSON_SPACE):
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                shown = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                rows.reject(
                    str(path), n, "line", f"is not UTF-8 ({err.reason}): re-encode the file", shown
                )
                continue
            if n == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                rows.reject(str(path), n, "line", f"not valid JSON ({err.msg}): fix the line", text)
                continue
            except RecursionError:
                reason = "nests too deeply for the JSON parser: flatten the row"
                rows.reject(str(path), n, "line", reason, text)
                continue
            except ValueError as err:  # e.g. an integer of more than 4,300 digits
                rows.reject(str(path), n, "line", f"not readable JSON ({err}): fix the line", text)
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


def read_table(table: pa.Table, source: str, rows: Rows, header_line: bool = False) -> None:
    """Every row of an Arrow table (Parquet, CSV, dataset) as a row, numbered from 1."""
    spec = rows.spec
    roles = ("task", "messages") if spec.messages is not None else ("task", "prompt", "response")
    names = [str(getattr(spec, r)) for r in roles]
    where = f"{source}:1" if header_line else source
    for role, name in zip(roles, names, strict=True):
        if name not in table.column_names:
            raise RaremixError(
                f"{source}: no column '{name}' for the {role} "
                f"({did_you_mean(name, table.column_names)}): map it with --{role}-col"
            )
        times = table.column_names.count(name)
        if times > 1:
            label = f"'{name}'" if name == role else f"'{name}' (the {role})"
            raise RaremixError(
                f"{where}: column {label} appears {times} times: "
                f"rename all but one, or map another column with --{role}-col"
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


def read_parquet(source: str, rows: Rows) -> None:
    """A Parquet file's rows."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as err:
        raise RaremixError(
            f"{source}: not a readable Parquet file ({_first_line(err)}): check the file"
        ) from None
    read_table(table, source, rows)


def read_csv(source: str, rows: Rows) -> None:
    """A CSV file's rows; a record with the wrong number of fields is rejected by its line."""
    import pyarrow.csv as pcsv

    spec = rows.spec
    text_cols = [spec.task, spec.prompt, spec.response, spec.messages or spec.task]
    malformed: list[Any] = []

    def set_aside(row: Any) -> str:
        malformed.append(row)  # pyarrow ignores a raise here: collect, then reject in order
        return "skip"

    try:
        table = pcsv.read_csv(
            source,
            # values may hold newlines: quoted multi-line prompts are common
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=set_aside),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(text_cols, pa.string())),
        )
    except (pa.ArrowException, OSError) as err:
        raise RaremixError(
            f"{source}: not a readable CSV file ({_first_line(err)}): check the file"
        ) from None
    if malformed:
        data = Path(source).read_bytes()
        start = 0
        for bad in malformed:
            at = data.find(bad.text.encode(), start)
            at = at if at >= 0 else data.find(bad.text.encode())
            start = max(at, 0) + 1
            reason = (
                f"has {bad.actual_columns} fields but the header has {bad.expected_columns}: "
                "quote values holding commas, or fix the record"
            )
            rows.reject(source, data.count(b"\n", 0, max(at, 0)) + 1, "line", reason, bad.text)
    read_table(table, source, rows, header_line=True)


def read_hf(source: str, rows: Rows) -> None:
    """A saved (save_to_disk) or hub dataset's split."""
    read_table(_hf_table(source, rows.spec), source, rows)


def _hf_table(source: str, spec: TaggedSpec) -> pa.Table:
    try:
        import datasets
    except ImportError:
        raise RaremixError(
            f"{source}: reading Hugging Face datasets needs `datasets`: pip install 'raremix[hf]'"
        ) from None
    split = spec.split
    if source.startswith(HUB_PREFIX):
        name = source.removeprefix(HUB_PREFIX)
        try:
            ds: Any = datasets.load_dataset(name, split=split or "train")
        except Exception as err:  # network, auth, or a bad name: datasets raises many types
            raise RaremixError(
                f"{source}: cannot load from the hub ({_first_line(err)[:160]}): "
                "check the name and the network, or save it to disk and pass the folder"
            ) from None
    else:
        ds = _load_from_disk(datasets, source)
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        chosen = split or ("train" if "train" in ds else splits[0] if len(splits) == 1 else None)
        if chosen is None or chosen not in ds:
            hint = did_you_mean(chosen, splits) if chosen else f"choose one of: {', '.join(splits)}"
            raise RaremixError(f"{source}: which split? {hint}: pass --split NAME")
        ds = ds[chosen]
    try:
        table: pa.Table = ds.with_format("arrow")[:]
    except Exception as err:  # a damaged Arrow file shows only when its rows are read
        raise _damaged(source, err) from None
    return table


def _load_from_disk(datasets: Any, source: str) -> Any:
    try:
        return datasets.load_from_disk(source)
    except Exception as err:  # missing or damaged files: datasets raises many types
        raise _damaged(source, err) from None


def _damaged(source: str, err: BaseException) -> RaremixError:
    return RaremixError(
        f"{source}: not a readable save_to_disk folder ({type(err).__name__}: "
        f"{_first_line(err)}): save the dataset again, or pass its data files instead"
    )
