"""Streaming reads: compressed JSONL, folders of shards, a chunk at a time, the same rows,
checks and errors as the in-memory read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from raremix.errors import RaremixError
from raremix.tagged import read_tagged, stream_tagged
from raremix.tagged.formats import CHUNK_ROWS


def rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"task": f"t{i % 3}", "prompt": f"p{i}", "response": f"r{i}"}
        for i in range(start, start + n)
    ]


def jsonl(rows_: list[dict[str, str]], extra: bytes = b"") -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows_).encode() + extra


def write(path: Path, data: bytes) -> Path:
    if path.suffix.lower() == ".gz":
        path.write_bytes(gzip.compress(data))
    elif path.suffix.lower() == ".zst":
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(data)
    return path


def streamed(path: Path, **kwargs: object) -> pa.Table:
    return pa.concat_tables(list(stream_tagged(path, **kwargs)))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.jsonl.zst", "D.NDJSON.GZ"])
def test_compressed_jsonl_reads_the_rows_of_the_plain_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, jsonl(rows(CHUNK_ROWS + 5)))
    data = read_tagged(path)
    assert data.table.select(["task", "prompt", "response"]).to_pylist() == rows(CHUNK_ROWS + 5)
    chunks = list(stream := stream_tagged(path))
    assert [c.num_rows for c in chunks] == [CHUNK_ROWS, 5]  # never the whole file at once
    assert pa.concat_tables(chunks).equals(data.table)
    assert stream.counts() == data.counts() and stream.rows_read == data.rows_read


def test_a_folder_of_mixed_shards_streams_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    write(folder / "part-0.jsonl.gz", jsonl(rows(3)))
    write(folder / "part-1.jsonl.zst", jsonl(rows(2, 3)))
    pq.write_table(pa.Table.from_pylist(rows(CHUNK_ROWS + 1, 5)), folder / "part-2.parquet")
    (folder / "part-3.csv").write_text("task,prompt,response\nt0,p,r\n")
    (folder / "README.txt").write_text("not data")
    stream = stream_tagged(folder)
    table = pa.concat_tables(list(stream))
    assert table.equals(read_tagged(folder).table)
    assert table.num_rows == 3 + 2 + CHUNK_ROWS + 1 + 1
    assert table.column("line").to_pylist()[-3:] == [CHUNK_ROWS, CHUNK_ROWS + 1, 1]
    assert stream.not_read == [str(folder / "README.txt")]


def test_an_invalid_row_deep_in_a_compressed_file_is_named_by_its_line(tmp_path: Path) -> None:
    n = 2 * CHUNK_ROWS + 10
    path = write(
        tmp_path / "d.jsonl.zst", jsonl(rows(n), b'{"task": 7, "prompt": "", "response": "r"}\n')
    )
    stream = iter(stream_tagged(path))
    assert next(stream).num_rows == CHUNK_ROWS  # rows arrive before the bad one is reached
    with pytest.raises(RaremixError, match=rf"d\.jsonl\.zst:{n + 1}: 'task' must be a string"):
        list(stream)
    with pytest.raises(RaremixError, match=rf"d\.jsonl\.zst:{n + 1}: 'task' must be a string"):
        read_tagged(path)


def test_skip_invalid_streams_the_same_rejected_rows(tmp_path: Path) -> None:
    bad = b'not json\n{"task": "a", "prompt": "p"}\n'
    path = write(tmp_path / "d.jsonl.gz", jsonl(rows(CHUNK_ROWS), bad) + jsonl(rows(4)))
    memory = read_tagged(path, skip_invalid=True, rejected_path=tmp_path / "mem.rejected.jsonl")
    stream = stream_tagged(path, skip_invalid=True, rejected_path=tmp_path / "s.rejected.jsonl")
    assert pa.concat_tables(list(stream)).equals(memory.table)
    assert stream.rejected == 2 and stream.rows_read == CHUNK_ROWS + 6 == memory.rows_read
    assert stream.rejected_path is not None
    assert stream.rejected_path.read_text() == memory.rejected_path.read_text()  # type: ignore[union-attr]
    assert [json.loads(x)["line"] for x in stream.rejected_path.read_text().splitlines()] == [
        CHUNK_ROWS + 1,
        CHUNK_ROWS + 2,
    ]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_damaged_compressed_data_stops_with_one_line(tmp_path: Path, suffix: str) -> None:
    whole = write(tmp_path / f"w.jsonl{suffix}", jsonl(rows(3 * CHUNK_ROWS)))
    cut = tmp_path / f"cut.jsonl{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a truncated download
    with pytest.raises(
        RaremixError, match=r"cut\.jsonl\.(gz|zst): the compressed data is damaged after line \d+"
    ):
        list(stream_tagged(cut))
    garbage = tmp_path / f"g.jsonl{suffix}"
    garbage.write_bytes(b"this was never compressed\n")
    with pytest.raises(RaremixError, match="the compressed data is damaged before its first line"):
        read_tagged(garbage)


def test_a_compressed_non_jsonl_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet.gz"
    path.write_bytes(gzip.compress(b"x"))
    with pytest.raises(RaremixError, match=r"unknown format '\.gz'.*\.jsonl\.gz"):
        stream_tagged(path)


def test_an_abandoned_stream_leaves_no_half_written_rejects(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", b"broken\n" + jsonl(rows(3 * CHUNK_ROWS)))
    target = tmp_path / "out.rejected.jsonl"
    stream = iter(stream_tagged(path, skip_invalid=True, rejected_path=target))
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == [path]
