"""Reading task-tagged data: every format, column mapping, chat messages, invalid rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raremix.errors import RaremixError
from raremix.tagged import read_tagged

ROWS = [
    {"task": "common", "prompt": "p0", "response": "r0"},
    {"task": "rare", "prompt": "", "response": "r1"},  # an empty prompt is allowed
    {"task": "common", "prompt": "p2, with a comma", "response": 'r2 "quoted"'},
    {"task": "mid", "prompt": "p3\nsecond line", "response": "r3"},
]


def write(path: Path, rows: list[dict[str, Any]], fmt: str) -> Path:
    """Write rows as `fmt` (jsonl, parquet, csv, hf) at `path`; return what to read."""
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "hf"])
def test_every_format_reads_the_same_rows(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path / f"data.{fmt}", ROWS, fmt)
    data = read_tagged(path)
    got = data.table.select(["task", "prompt", "response"]).to_pylist()
    assert got == ROWS
    assert data.table.column("line").to_pylist() == [1, 2, 3, 4]
    assert set(data.table.column("file").to_pylist()) == {str(path)}
    assert data.counts() == {"common": 2, "mid": 1, "rare": 1}
    assert data.rows_read == 4 and data.rejected == [] and data.rejected_path is None


def test_jsonl_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text(f"\n{json.dumps(ROWS[0])}\n\n   \n{json.dumps(ROWS[1])}\n")
    assert read_tagged(path).table.column("line").to_pylist() == [2, 5]


def test_a_folder_reads_every_file_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write(folder / "b.parquet", ROWS[2:], "parquet")
    write(folder / "a.jsonl", ROWS[:2], "jsonl")
    (folder / "a.jsonl.rejected.jsonl").write_text("not data\n")  # an earlier run's rejects
    data = read_tagged(folder)
    assert data.table.select(["task", "prompt", "response"]).to_pylist() == ROWS
    assert data.files == [str(folder / "a.jsonl"), str(folder / "b.parquet")]


def test_a_saved_dataset_dict_reads_the_train_split_or_the_named_one(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS[:1])}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_tagged(tmp_path / "dd").table.num_rows == 4
    assert read_tagged(tmp_path / "dd", split="test").table.num_rows == 1
    with pytest.raises(RaremixError, match="which split\\? did you mean 'test'\\?"):
        read_tagged(tmp_path / "dd", split="tset")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_column_mapping(tmp_path: Path, fmt: str) -> None:
    renamed = [{"skill": r["task"], "input": r["prompt"], "output": r["response"]} for r in ROWS]
    path = write(tmp_path / f"data.{fmt}", renamed, fmt)
    data = read_tagged(path, task="skill", prompt="input", response="output")
    assert data.table.select(["task", "prompt", "response"]).to_pylist() == ROWS


def test_csv_keeps_task_names_that_look_like_numbers(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("task,prompt,response\n007,a,b\n1.50,c,d\n")
    assert read_tagged(path).table.column("task").to_pylist() == ["007", "1.50"]


def test_a_missing_column_names_the_columns_and_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "d.parquet", ROWS, "parquet")
    with pytest.raises(RaremixError) as err:
        read_tagged(path, task="tsk")
    assert str(err.value) == (
        f"{path}: no column 'tsk' for the task (did you mean 'task'?): map it with --task-col"
    )


CHATS = [
    {
        "task": "tool",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "get_weather()"},
        ],
    },
    {"task": "chat", "messages": [{"role": "assistant", "content": "hello"}]},
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_chat_messages_split_into_prompt_and_final_reply(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path / f"chat.{fmt}", CHATS, fmt)
    got = read_tagged(path, messages="messages").table.to_pylist()
    assert [(r["task"], r["prompt"], r["response"]) for r in got] == [
        ("tool", "system: be brief\nuser: weather?\nassistant:", "get_weather()"),
        ("chat", "assistant:", "hello"),
    ]


def test_chat_messages_with_a_tokenizer_chat_template(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template).save_pretrained(
        tmp_path / "tok"
    )
    path = write(tmp_path / "chat.jsonl", CHATS[:1], "jsonl")
    row = read_tagged(path, messages="messages", chat_template=str(tmp_path / "tok")).table
    assert row.column("prompt").to_pylist() == [
        "<|system|>be brief\n<|user|>weather?\n<|assistant|>"
    ]
    assert row.column("response").to_pylist() == ["get_weather()"]


GOOD = json.dumps(ROWS[0])
INVALID_JSONL = [
    ('{"task": "a", "prompt": "p", ', "not valid JSON"),
    ('["a", "list"]', "is a JSON list, not an object: write one object per line"),
    ('{"prompt": "p", "response": "r"}', "no field 'task' (fields: prompt, response): add it"),
    ('{"task": "", "prompt": "p", "response": "r"}', "'task' is empty: fill it in"),
    ('{"task": null, "prompt": "p", "response": "r"}', "'task' is null: fill it in"),
    ('{"task": 3, "prompt": "p", "response": "r"}', "'task' must be a string, not int"),
    ('{"task": "a", "response": "r"}', "no field 'prompt'"),
    ('{"task": "a", "prompt": ["p"], "response": "r"}', "'prompt' must be a string, not list"),
    ('{"task": "a", "prompt": "p", "response": "  "}', "'response' is empty: fill it in"),
    ('{"task": "a", "prompt": "p"}', "no field 'response'"),
]


@pytest.mark.parametrize(("line", "reason"), INVALID_JSONL)
def test_each_invalid_jsonl_row_stops_the_read_naming_file_and_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    with pytest.raises(RaremixError) as err:
        read_tagged(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: {reason}")
    assert message.endswith("(or pass --skip-invalid to set invalid rows aside)")
    assert "\n" not in message


INVALID_CHATS = [
    ("hi", "is text that is not a JSON list of turns"),
    ([], "is an empty list"),
    (["hi"], "turn 1 is a str, not a {role, content} object"),
    ([{"role": "user"}], "turn 1 has no 'content' string"),
    ([{"content": "x"}], "turn 1 has no 'role' string"),
    (
        [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}],
        "ends with a 'user' turn",
    ),
    ([{"role": "assistant", "content": " "}], "the final assistant turn is empty"),
]


@pytest.mark.parametrize(("messages", "reason"), INVALID_CHATS)
def test_each_invalid_chat_is_named(tmp_path: Path, messages: Any, reason: str) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"task": "t", "messages": messages}) + "\n")
    with pytest.raises(RaremixError, match=f"^{path}:1: 'messages' {reason}".replace("[", "\\[")):
        read_tagged(path, messages="messages")


def test_invalid_tabular_rows_are_named_by_row(tmp_path: Path) -> None:
    rows = [*ROWS, {"task": "common", "prompt": "p", "response": None}]
    path = write(tmp_path / "bad.parquet", rows, "parquet")
    with pytest.raises(RaremixError, match=f"^{path}: row 5: 'response' is null: fill it in"):
        read_tagged(path)


def test_skip_invalid_sets_rows_aside_and_loses_none(tmp_path: Path) -> None:
    lines = [GOOD]
    for line, _ in INVALID_JSONL:
        lines += [line, GOOD]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rejected = tmp_path / "out" / "rejected.jsonl"
    data = read_tagged(path, skip_invalid=True, rejected_path=rejected)
    assert data.table.num_rows == len(INVALID_JSONL) + 1
    assert len(data.rejected) == len(INVALID_JSONL)
    assert data.rows_read == len(lines)  # valid + rejected = every input row
    written = [json.loads(x) for x in rejected.read_text().splitlines()]
    assert data.rejected_path == rejected and written == data.rejected
    valid_lines = data.table.column("line").to_pylist()
    rejected_lines = [r["line"] for r in written]
    assert sorted(valid_lines + rejected_lines) == list(range(1, len(lines) + 1))
    for r, (line, reason) in zip(written, INVALID_JSONL, strict=True):
        assert r["input"] == line and r["reason"].startswith(reason)


def test_nothing_valid_or_nothing_at_all_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"kind": "a", "prompt": "p", "response": "r"}\n')
    with pytest.raises(
        RaremixError, match=r"none of its 1 rows is valid .*check the column mapping"
    ):
        read_tagged(path, skip_invalid=True, rejected_path=tmp_path / "r.jsonl")
    path.write_text("\n")
    with pytest.raises(RaremixError, match="has no rows"):
        read_tagged(path)


def test_path_and_format_errors(tmp_path: Path) -> None:
    with pytest.raises(RaremixError, match="no such file or folder"):
        read_tagged(tmp_path / "missing.jsonl")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(RaremixError, match=r"unknown format '\.txt'.*--format jsonl"):
        read_tagged(tmp_path / "d.txt")
    assert read_tagged(write(tmp_path / "d.log", ROWS, "jsonl"), format="jsonl").table.num_rows == 4
    with pytest.raises(RaremixError, match="'format'"):
        read_tagged(tmp_path / "d.log", format="xml")


def test_a_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + '{"task": "café"}'.encode("latin-1") + b"\n")
    with pytest.raises(RaremixError, match=f"^{path}:2: is not UTF-8 .*re-encode the file"):
        read_tagged(path)
