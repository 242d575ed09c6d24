"""Bad task-tagged data: one line naming the problem and the fix, exit 2, and no row lost."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_runner import Result, cli
from raremix.errors import RaremixError
from raremix.tagged import read_tagged

GOOD = json.dumps({"task": "a", "prompt": "p", "response": "r"})


@pytest.fixture
def raremix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    return lambda *args: cli(capsys, monkeypatch, *args)


def one_line_error(result: Result, *needles: str) -> None:
    assert result.code == 2, result
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in result.err, result.err


# JSONL rows that used to raise tracebacks: now each is one rejected row ------------------

NASTY = [
    ('{"task": "a", "prompt": "\\ud800", "response": "r"}', "the prompt holds a lone surrogate"),
    ('{"task": "\\udfff", "prompt": "p", "response": "r"}', "the task holds a lone surrogate"),
    ('{"task": "a", "prompt": "p", "response": "x\\udc80y"}', "the response holds a lone"),
    (
        '{"task": "a", "prompt": ' + "[" * 10_000 + "]" * 10_000 + ', "response": "r"}',
        "nests too deeply",
    ),
    ("[" * 100_000, "nests too deeply"),
    ('{"task": "a", "prompt": "p", "response": "r", "n": ' + "9" * 5000 + "}", "not readable JSON"),
]


@pytest.mark.parametrize(("line", "reason"), NASTY)
def test_a_nasty_jsonl_row_is_named_or_set_aside(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "nasty.jsonl"
    path.write_text(f"{GOOD}\n{line}\n{GOOD}\n")
    with pytest.raises(RaremixError) as err:
        read_tagged(path)
    assert str(err.value).startswith(f"{path}:2: {reason}") and "\n" not in str(err.value)
    rejected = tmp_path / "bad.jsonl"
    data = read_tagged(path, skip_invalid=True, rejected_path=rejected)
    assert data.table.num_rows == 2 and len(data.rejected) == 1
    written = [json.loads(x) for x in rejected.read_text(encoding="utf-8").splitlines()]
    # the rejected file is valid UTF-8 JSON and holds the line exactly as it was
    assert written[0]["line"] == 2 and written[0]["input"] == line


def test_a_lone_surrogate_in_chat_messages_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    turn = '{"role": "assistant", "content": "hi \\ud83d"}'
    path.write_text(f'{{"task": "t", "messages": [{turn}]}}\n')
    with pytest.raises(RaremixError, match=r":1: the response holds a lone surrogate"):
        read_tagged(path, messages="messages")


def test_the_inspect_cli_reports_a_nasty_row_in_one_line(tmp_path: Path, raremix) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(GOOD + "\n" + '{"task": "a", "prompt": ' + "[" * 10_000 + "\n")
    one_line_error(raremix("inspect", str(path)), f"{path}:2: ", "--skip-invalid")


# lines are split on \n only; a line of a form feed is a (rejected) row, not a blank ------


def test_form_feeds_and_unicode_line_breaks_never_split_or_hide_rows(tmp_path: Path) -> None:
    rows = [
        {"task": "a", "prompt": "page\fbreak", "response": "r"},
        {"task": "a", "prompt": "v\vtab \x1c\x1d\x1e \x85 \u2028 \u2029", "response": "r"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines += ["\f", "\v", '{"task": "a",\f"prompt": "p", "response": "r"}', "\u2028"]
    path = tmp_path / "ff.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_tagged(path, skip_invalid=True, rejected_path=tmp_path / "rej.jsonl")
    assert data.table.select(["task", "prompt", "response"]).to_pylist() == rows
    assert [r["line"] for r in data.rejected] == [3, 4, 5, 6]
    assert data.rows_read == len(lines)


def test_a_byte_order_mark_on_the_first_line_is_not_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_text(f"{GOOD}\n{GOOD}\n", encoding="utf-8-sig")
    assert read_tagged(path).table.num_rows == 2


# CSV -------------------------------------------------------------------------------------


def test_a_duplicate_csv_header_is_one_line(tmp_path: Path, raremix) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("task,prompt,response,prompt\na,p,r,q\n")
    with pytest.raises(RaremixError) as err:
        read_tagged(path)
    assert str(err.value) == (
        f"{path}:1: column 'prompt' appears 2 times: rename all but one, "
        "or map another column with --prompt-col"
    )
    one_line_error(raremix("inspect", str(path)), "appears 2 times")
    # a duplicate that is not one of the mapped columns does no harm
    path.write_text("task,prompt,response,extra,extra\na,p,r,1,2\n")
    assert read_tagged(path).table.num_rows == 1


def test_csv_records_with_the_wrong_field_count_are_rejected_by_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text('task,prompt,response\na,p,r\nb,"multi\nline",r,extra\na,p2,r2\nc,p\n')
    with pytest.raises(RaremixError, match=rf"^{path}:3: has 4 fields but the header has 3"):
        read_tagged(path)
    data = read_tagged(path, skip_invalid=True, rejected_path=tmp_path / "rej.jsonl")
    assert data.table.column("prompt").to_pylist() == ["p", "p2"]
    assert [(r["line"], r["input"]) for r in data.rejected] == [
        (3, 'b,"multi\nline",r,extra'),
        (6, "c,p"),
    ]
    assert data.rows_read == 4


# Hugging Face save_to_disk folders -------------------------------------------------------


def _saved(folder: Path) -> Path:
    import datasets

    rows = [{"task": "a", "prompt": f"p{i}", "response": "r"} for i in range(200)]
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    return folder


def _arrow(folder: Path) -> Path:
    return next(folder.glob("*.arrow"))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated arrow": lambda f: _arrow(f).write_bytes(_arrow(f).read_bytes()[:3000]),
    "empty arrow": lambda f: _arrow(f).write_bytes(b""),
    "garbage arrow": lambda f: _arrow(f).write_bytes(b"x" * 4000),
    "missing arrow": lambda f: _arrow(f).unlink(),
    "garbage state.json": lambda f: (f / "state.json").write_text("{not json"),
    "wrong state.json": lambda f: (f / "state.json").write_text('{"_data_files": 3}'),
    "garbage dataset_info.json": lambda f: (f / "dataset_info.json").write_text("{{"),
}


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_save_to_disk_folder_is_one_line(
    tmp_path: Path, damage: str, raremix, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _saved(tmp_path / "ds")
    capsys.readouterr()  # save_to_disk's progress bar is not the command's output
    CORRUPTIONS[damage](folder)
    with pytest.raises(RaremixError, match=rf"^{folder}: not a readable save_to_disk folder"):
        read_tagged(folder)
    one_line_error(raremix("inspect", str(folder)), "save the dataset again")


def test_a_damaged_dataset_dict_is_one_line(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"task": "a"}])})
    dd.save_to_disk(str(tmp_path / "dd"))
    shutil.rmtree(tmp_path / "dd" / "train")
    with pytest.raises(RaremixError, match="not a readable save_to_disk folder"):
        read_tagged(tmp_path / "dd")


# the rejected-rows file ------------------------------------------------------------------


def test_rejected_rows_never_overwrite_an_input(tmp_path: Path, raremix) -> None:
    path = tmp_path / "data.jsonl"
    text = f"{GOOD}\nnot json\n"
    path.write_text(text)
    for target in (path, tmp_path / "." / "data.jsonl"):
        with pytest.raises(RaremixError, match=r"is the input .* would overwrite the data"):
            read_tagged(path, skip_invalid=True, rejected_path=target)
    (tmp_path / "link.jsonl").symlink_to(path)
    with pytest.raises(RaremixError, match="would overwrite the data"):
        read_tagged(path, skip_invalid=True, rejected_path=tmp_path / "link.jsonl")
    result = raremix("inspect", str(path), "--skip-invalid", "--rejected", str(path))
    one_line_error(result, "pass another --rejected path")
    assert path.read_text() == text  # untouched


def test_rejected_rows_never_land_in_the_data_folder_as_data(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text(f"{GOOD}\nnot json\n")
    inside = folder / "bad.jsonl"
    with pytest.raises(RaremixError, match=r"inside the data folder .* would be read"):
        read_tagged(folder, skip_invalid=True, rejected_path=inside)
    assert not inside.exists()
    # a *.rejected.jsonl name inside is fine: the folder reader never reads those
    ok = folder / "bad.rejected.jsonl"
    assert read_tagged(folder, skip_invalid=True, rejected_path=ok).rejected_path == ok
    assert read_tagged(folder, skip_invalid=True, rejected_path=ok).rows_read == 2


def test_every_row_invalid_still_writes_the_rejected_file(tmp_path: Path, raremix) -> None:
    path = tmp_path / "all-bad.jsonl"
    path.write_text('{"kind": "a"}\nnot json\n[1]\n')
    rejected = tmp_path / "out" / "rej.jsonl"
    with pytest.raises(RaremixError, match=rf"none of its 3 rows is valid .*all are in {rejected}"):
        read_tagged(path, skip_invalid=True, rejected_path=rejected)
    assert [json.loads(x)["line"] for x in rejected.read_text().splitlines()] == [1, 2, 3]
    rejected.unlink()
    result = raremix("inspect", str(path), "--skip-invalid", "--rejected", str(rejected))
    one_line_error(result, "none of its 3 rows is valid")
    assert len(rejected.read_text().splitlines()) == 3


# folders ---------------------------------------------------------------------------------


def test_upper_case_suffixes_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "DATA.JSONL").write_text(f"{GOOD}\n{GOOD}\n")
    (folder / "b.Jsonl").write_text(f"{GOOD}\n")
    pq.write_table(pa.Table.from_pylist([json.loads(GOOD)]), folder / "C.PARQUET")
    (folder / "D.CSV").write_text("task,prompt,response\na,p,r\n")
    data = read_tagged(folder)
    assert data.rows_read == 5 and len(data.files) == 4 and data.not_read == []
    assert read_tagged(folder / "DATA.JSONL").rows_read == 2
    assert read_tagged(folder, format="jsonl").rows_read == 3


def test_files_a_folder_read_leaves_out_are_said_aloud(tmp_path: Path, raremix) -> None:
    folder = tmp_path / "data"
    (folder / ".cache").mkdir(parents=True)
    (folder / "a.jsonl").write_text(f"{GOOD}\n")
    (folder / "notes.txt").write_text("not data")
    (folder / "b.jsonl.bz2").write_bytes(b"BZh")  # not a format raremix reads
    (folder / ".cache" / "x.jsonl").write_text("hidden")  # hidden: neither data nor noise
    (folder / "a.jsonl.rejected.jsonl").write_text("an earlier run's rejects\n")
    (folder / "gone.jsonl").symlink_to(tmp_path / "deleted.jsonl")  # a broken link
    data = read_tagged(folder)
    assert data.not_read == [str(folder / p) for p in ("b.jsonl.bz2", "gone.jsonl", "notes.txt")]
    result = raremix("inspect", str(folder))
    assert result.code == 0
    assert (
        "3 file(s) in" in result.out and "b.jsonl.bz2" in result.out and "notes.txt" in result.out
    )


# the same lines through `raremix mix plan|write --data` ----------------------------------


BAD_DATA: dict[str, tuple[str, bytes, str]] = {
    "duplicate header": ("dup.csv", b"task,prompt,response,task\na,p,r,b\n", "appears 2 times"),
    "lone surrogate": (
        "s.jsonl",
        b'{"task": "a", "prompt": "\\ud800", "response": "r"}\n',
        ":1: the prompt holds a lone surrogate",
    ),
    "deep nesting": ("d.jsonl", b"[" * 20_000 + b"\n", ":1: nests too deeply"),
    "ragged csv": ("r.csv", b"task,prompt,response\na,p\n", ":2: has 2 fields"),
    "not parquet": ("x.parquet", b"PAR1 not really", "not a readable Parquet file"),
}


@pytest.mark.parametrize("command", ["plan", "write"])
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_mix_with_bad_data_is_one_line(tmp_path: Path, raremix, command: str, case: str) -> None:
    name, content, needle = BAD_DATA[case]
    data = tmp_path / name
    data.write_bytes(content)
    config = tmp_path / "mix.yaml"
    config.write_text("mixture: {strategy: natural}\n")
    extra = ["--out", str(tmp_path / "shards")] if command == "write" else []
    one_line_error(raremix("mix", command, str(config), "--data", str(data), *extra), needle)
    assert not (tmp_path / "shards").exists()


def test_a_yaml_rejected_path_is_beside_the_yaml_and_never_its_input(
    tmp_path: Path, raremix, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # relative paths in the YAML are not cwd's
    data = tmp_path / "d.jsonl"
    text = f"{GOOD}\nbroken\n"
    data.write_text(text)
    config = tmp_path / "mix.yaml"
    section = "data: {path: d.jsonl, skip_invalid: true, rejected: %s}\n"
    config.write_text("mixture: {strategy: natural}\n" + section % "d.jsonl")
    result = raremix("mix", "write", str(config), "--out", str(tmp_path / "o"), "--steps", "2")
    one_line_error(result, "would overwrite the data")
    assert data.read_text() == text and not (tmp_path / "o").exists()
    config.write_text("mixture: {strategy: natural}\n" + section % "bad.jsonl")
    assert raremix("mix", "plan", str(config)).code == 0
    assert json.loads((tmp_path / "bad.jsonl").read_text())["line"] == 2
    assert not list((tmp_path / "cwd").iterdir())
