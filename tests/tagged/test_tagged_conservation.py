"""No row is ever lost: for generated files of every format, rows in = accepted + rejected.

Hypothesis writes files mixing valid rows, invalid rows (nulls, blanks, wrong types,
lone surrogates, broken JSON, ragged CSV records, form-feed lines) and blank lines
(which hold no row), and checks that the reader accepts exactly the valid rows, in
order, and sets every other row aside in the rejected-rows file.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raremix.errors import RaremixError
from raremix.tagged import read_tagged

# characters that break naive readers: separators, quotes, every kind of line break
ALPHABET = list("ab ,;\"'\\{}[]\t\n\r\f\v\x1c\x1d\x1e\x85\u2028\u2029é😀")
TEXT = st.text(alphabet=st.sampled_from(ALPHABET), max_size=6)
SURROGATE_TEXT = st.text(alphabet=st.sampled_from([*ALPHABET, "\ud800", "\udfff"]), max_size=6)
FIELDS = ("task", "prompt", "response")

# JSONL lines that are rows but not valid ones, and lines that hold no row at all
BAD_LINES = [
    "\f",
    "\v",
    "\x1c",
    "\u2028",
    "garbage",
    '{"task": 1',
    "[1, 2]",
    "null",
    "[" * 3000,
    '{"task": "a",\f"prompt": "p", "response": "r"}',
]
BLANK_LINES = ["", " ", "\t", "\r", " \t\r"]
RAGGED_CSV = ["x,y", "a,b,c,d", '"q",,,,']


def expected_valid(row: dict[str, Any]) -> bool:
    """The reader's contract, stated independently: task and response non-blank text,
    prompt any text, all of it storable as UTF-8."""
    values = [row.get(f) for f in FIELDS]
    if not all(isinstance(v, str) for v in values):
        return False
    task, _, response = values
    return bool(task.strip()) and bool(response.strip()) and all(map(_storable, values))


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _cell(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(text, text, text, st.none())


TABULAR_ROW = st.fixed_dictionaries({f: _cell(TEXT) for f in FIELDS})
JSON_ROW = st.fixed_dictionaries(
    {},
    optional={
        f: st.one_of(SURROGATE_TEXT, SURROGATE_TEXT, st.none(), st.integers(), st.lists(TEXT))
        for f in FIELDS
    },
)


def _json_line(row: dict[str, Any]) -> str:
    try:
        line = json.dumps(row, ensure_ascii=False)
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:  # a lone surrogate: only its \u escape can be written
        return json.dumps(row)


# each item: ("row", dict) | ("bad", str) | ("blank", str)
JSONL_ITEMS = st.lists(
    st.one_of(
        st.tuples(st.just("row"), JSON_ROW),
        st.tuples(st.just("bad"), st.sampled_from(BAD_LINES)),
        st.tuples(st.just("blank"), st.sampled_from(BLANK_LINES)),
    ),
    min_size=1,
    max_size=25,
)
CSV_ITEMS = st.lists(
    st.one_of(
        st.tuples(st.just("row"), TABULAR_ROW),
        st.tuples(st.just("row"), TABULAR_ROW),
        st.tuples(st.just("bad"), st.sampled_from(RAGGED_CSV)),
    ),
    min_size=1,
    max_size=25,
)
TABLE_ITEMS = st.lists(st.tuples(st.just("row"), TABULAR_ROW), min_size=1, max_size=25)


def write(path: Path, fmt: str, items: list[tuple[str, Any]]) -> tuple[int, list[dict]]:
    """Write the items as `fmt` at `path`: (rows in, the rows as the reader should see them)."""
    rows = [value for kind, value in items if kind == "row"]
    if fmt == "jsonl":
        lines = [_json_line(v) if kind == "row" else v for kind, v in items]
        path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            f.write(",".join(FIELDS) + "\n")
            # quote every field: the csv module leaves a bare \r unquoted, which CSV
            # readers rightly take as the end of a record
            out = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
            for kind, value in items:
                if kind == "row":
                    out.writerow([value[c] or "" for c in FIELDS])
                else:
                    f.write(value + "\n")
        rows = [{c: r[c] or "" for c in FIELDS} for r in rows]  # CSV has no null: ""
    elif fmt == "parquet":
        schema = pa.schema([(c, pa.string()) for c in FIELDS])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    else:
        import datasets

        features = datasets.Features({c: datasets.Value("string") for c in FIELDS})
        datasets.Dataset.from_list(rows, features=features).save_to_disk(str(path))
    return sum(kind != "blank" for kind, _ in items), rows


def check_conservation(path: Path, rows_in: int, rows: list[dict], rejected_path: Path) -> None:
    """Read `path` with skip_invalid: exactly the valid rows come back, every other row is
    in the rejected file, and nothing else happened to any row."""
    valid = [{c: r[c] for c in FIELDS} for r in rows if expected_valid(r)]
    if not valid:  # an error, with every row (if any) in the rejected file
        match = "none of its .* rows is valid" if rows_in else "has no rows"
        with pytest.raises(RaremixError, match=match):
            read_tagged(path, skip_invalid=True, rejected_path=rejected_path)
        if rows_in:
            assert len(rejected_path.read_text(encoding="utf-8").split("\n")[:-1]) == rows_in
        return
    data = read_tagged(path, skip_invalid=True, rejected_path=rejected_path)
    assert data.table.num_rows + len(data.rejected) == rows_in == data.rows_read
    assert data.table.select(list(FIELDS)).to_pylist() == valid
    written = rejected_path.read_text(encoding="utf-8").split("\n")[:-1] if data.rejected else []
    assert len(written) == len(data.rejected)
    assert all(isinstance(json.loads(x), dict) for x in written)


def check_file(fmt: str, items: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        rows_in, rows = write(path, fmt, items)
        check_conservation(path, rows_in, rows, Path(tmp) / "rejected.jsonl")


def examples(n: int) -> settings:
    """`n` examples, each free to take a while (files are written and read)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@examples(150)
@given(items=JSONL_ITEMS)
def test_jsonl_rows_in_equal_accepted_plus_rejected(items: list[tuple[str, Any]]) -> None:
    check_file("jsonl", items)


@examples(100)
@given(items=CSV_ITEMS)
def test_csv_rows_in_equal_accepted_plus_rejected(items: list[tuple[str, Any]]) -> None:
    check_file("csv", items)


@examples(60)
@given(items=TABLE_ITEMS)
def test_parquet_rows_in_equal_accepted_plus_rejected(items: list[tuple[str, Any]]) -> None:
    check_file("parquet", items)


@examples(10)
@given(items=TABLE_ITEMS)
def test_saved_dataset_rows_in_equal_accepted_plus_rejected(items: list[tuple[str, Any]]) -> None:
    pytest.importorskip("datasets")
    check_file("hf", items)


FILES = st.lists(
    st.one_of(
        st.tuples(st.just("jsonl"), JSONL_ITEMS),
        st.tuples(st.just("csv"), CSV_ITEMS),
        st.tuples(st.just("parquet"), TABLE_ITEMS),
    ),
    min_size=1,
    max_size=6,
)


@examples(40)
@given(files=FILES, upper=st.lists(st.booleans(), min_size=6, max_size=6))
def test_a_folder_of_mixed_files_loses_no_row(
    files: list[tuple[str, list[tuple[str, Any]]]], upper: list[bool]
) -> None:
    """A folder of files in every format (some with upper-case suffixes): read in name
    order, the totals add up and the valid rows come back in order."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        rows_in, rows = 0, []
        for k, (fmt, items) in enumerate(files):
            suffix = fmt.upper() if upper[k] else fmt
            n, got = write(folder / f"part{k}.{suffix}", fmt, items)
            rows_in, rows = rows_in + n, rows + got
        check_conservation(folder, rows_in, rows, Path(tmp) / "rejected.jsonl")
