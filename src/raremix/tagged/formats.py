"""One reader per format: JSONL, Parquet, CSV and Hugging Face datasets, each feeding `Rows`.

Every input row reaches `Rows` as valid or rejected — none is skipped — so rows in =
accepted + rejected. A JSONL row is a line split on `\\n` only (not on form feeds or
Unicode line separators, which may sit inside a row); a line holding only JSON
whitespace is blank and holds no row. A CSV record with the wrong number of fields is
rejected by its line. A file that cannot be read at all stops with one line.

Readers are generators: they pause (yield) every `CHUNK_ROWS` rows, so that a streaming
caller can take the rows so far out of `Rows` (`Rows.drain`) and memory stays bounded.
JSONL may be compressed (`.jsonl.gz`, `.jsonl.zst`): it is decompressed as it is read.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from raremix.errors import RaremixError, did_you_mean
from raremix.tagged.rows import COLUMNS, Rows, all_valid
from raremix.tagged.spec import TaggedSpec

HUB_PREFIX = "hf:"
_JSON_SPACE = b" \t\r\n"  # JSON's whitespace; a \f or \v line is not blank but invalid
CHUNK_ROWS = 8192
"""Rows a reader reads between pauses: a streaming read holds about this many at once."""
COMPRESSIONS = (".gz", ".zst")
"""Suffixes of compressed JSONL (`data.jsonl.gz`, `data.jsonl.zst`), decompressed on the fly."""


def _first_line(err: BaseException) -> str:
    """An exception's message as one short line."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def read_jsonl(source: str, rows: Rows) -> Iterator[None]:
    """Every non-blank line of a JSONL file (plain, .gz or .zst) as a row: valid, or
    rejected by its line number; a pause every CHUNK_ROWS lines."""
    path = Path(source)
    n = 0
    try:
        with open_lines(path) as f:
            for n, raw in enumerate(f, 1):  # binary lines end at b"\n" only
                _jsonl_row(path, n, raw, rows)
                if n % CHUNK_ROWS == 0:
                    yield
    except OSError as err:
        if path.suffix.lower() in COMPRESSIONS and (isinstance(err, gzip.BadGzipFile) or n):
            raise _damaged_stream(path, n, err) from None
        raise RaremixError(
            f"{path}: cannot read it ({err.strerror or _first_line(err)}): check the file"
        ) from None
    except (EOFError, zlib.error) as err:  # a truncated or corrupt gzip stream
        raise _damaged_stream(path, n, err) from None
    except Exception as err:
        if type(err).__name__ != "ZstdError":  # zstandard is imported only for .zst files
            raise
        raise _damaged_stream(path, n, err) from None


@contextmanager
def open_lines(path: Path) -> Iterator[Iterable[bytes]]:
    """A file's bytes, decompressed by its suffix (.gz, .zst), iterable line by line."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        with gzip.open(path, "rb") as f:
            yield f
    elif suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise RaremixError(
                f"{path}: reading .zst needs `zstandard`: pip install zstandard "
                "(or decompress it with `zstd -d`)"
            ) from None
        with path.open("rb") as raw:
            yield _zstd_lines(raw, zstandard)
    else:
        with path.open("rb") as f:
            yield f


def _zstd_lines(raw: IO[bytes], zstandard: Any) -> Iterator[bytes]:
    """The lines of zstd data, frame after frame; a truncated last frame raises.

    (zstandard's `stream_reader` ends a truncated frame quietly, which would drop rows.)
    """
    d, rest, pending = zstandard.ZstdDecompressor().decompressobj(), b"", False
    while chunk := raw.read(1 << 20):
        while chunk:
            rest += d.decompress(chunk)
            pending = not d.eof
            chunk = d.unused_data if d.eof else b""
            if d.eof:  # concatenated frames (pzstd, `cat a.zst b.zst`): start the next
                d = zstandard.ZstdDecompressor().decompressobj()
        *lines, rest = rest.split(b"\n")
        yield from (line + b"\n" for line in lines)
    if pending:
        raise zstandard.ZstdError("the data ends inside a frame (a truncated file?)")
    if rest:
        yield rest


def _damaged_stream(path: Path, n: int, err: BaseException) -> RaremixError:
    """A compressed file that stops decompressing: say after which line, never drop the rest."""
    where = f"after line {n}" if n else "before its first line"
    return RaremixError(
        f"{path}: the compressed data is damaged {where} ({type(err).__name__}: "
        f"{_first_line(err)}): restore or re-compress the file (rows before it were read)"
    )


def _jsonl_row(path: Path, n: int, raw: bytes, rows: Rows) -> None:
    if not raw.strip(_JSON_SPACE):
        return
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        shown = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        rows.reject(str(path), n, "line", f"is not UTF-8 ({err.reason}): re-encode the file", shown)
        return
    if n == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        rows.reject(str(path), n, "line", f"not valid JSON ({err.msg}): fix the line", text)
        return
    except RecursionError:
        reason = "nests too deeply for the JSON parser: flatten the row"
        rows.reject(str(path), n, "line", reason, text)
        return
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        rows.reject(str(path), n, "line", f"not readable JSON ({err}): fix the line", text)
        return
    if not isinstance(obj, dict):
        rows.reject(
            str(path),
            n,
            "line",
            f"is a JSON {type(obj).__name__}, not an object: write one object per line",
            text,
        )
        return
    rows.add(obj, str(path), n, "line", text)


def read_table(
    table: pa.Table, source: str, rows: Rows, header_line: bool = False, first: int = 1
) -> None:
    """Every row of an Arrow table (Parquet, CSV, dataset) as a row, numbered from `first`."""
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
        columns += [
            pa.array([source] * n, pa.string()),
            pa.array(range(first, first + n), pa.int64()),
        ]
        rows.add_valid(pa.Table.from_arrays(columns, schema=pa.schema(COLUMNS)))
        return
    columns = [table.column(n).to_pylist() for n in names]  # row by row, to name each problem
    for i, values in enumerate(zip(*columns, strict=True), first):
        obj = dict(zip(names, values, strict=True))
        rows.add(obj, source, i, "row", obj)


def read_parquet(source: str, rows: Rows) -> Iterator[None]:
    """A Parquet file's rows, CHUNK_ROWS at a time."""
    import pyarrow.parquet as pq

    first = 1
    try:
        file = pq.ParquetFile(source)
        for batch in file.iter_batches(batch_size=CHUNK_ROWS):
            read_table(pa.Table.from_batches([batch]), source, rows, first=first)
            first += batch.num_rows
            yield
    except (pa.ArrowException, OSError) as err:
        raise RaremixError(
            f"{source}: not a readable Parquet file ({_first_line(err)}): check the file"
        ) from None
    if first == 1:  # no batches: check the mapping on the empty schema all the same
        read_table(file.schema_arrow.empty_table(), source, rows)


def read_csv(source: str, rows: Rows) -> Iterator[None]:
    """A CSV file's rows; a record with the wrong number of fields is rejected by its line.

    The file is read whole (a record may span lines; its line number needs the text): a
    stream of CSV holds one file at a time."""
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
    yield


def read_hf(source: str, rows: Rows) -> Iterator[None]:
    """A saved (save_to_disk) or hub dataset's split (memory-mapped by `datasets`)."""
    table = _hf_table(source, rows.spec)
    read_table(table.slice(0, 0), source, rows)  # the column mapping, checked once
    for first in range(0, table.num_rows, CHUNK_ROWS):
        read_table(table.slice(first, CHUNK_ROWS), source, rows, first=first + 1)
        yield


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
