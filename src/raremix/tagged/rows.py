"""Row checks: which rows are valid task-tagged rows, and why the others are not.

A row is valid when its task is a non-empty string, its prompt a string (possibly
empty) and its response a non-blank string — or, with a messages field, a list of
{role, content} turns ending in a non-blank assistant turn. `Rows` collects the valid
ones as Arrow tables and raises on (or, with skip_invalid, sets aside) the others.
Chat rows also keep their whole conversation, as JSON text in a `messages` column, so a
trainer can learn every assistant turn (`raremix.hf.encode`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from raremix.errors import RaremixError
from raremix.tagged.chat import Render, split_messages
from raremix.tagged.spec import TaggedSpec

SKIP_HINT = "(or pass --skip-invalid to set invalid rows aside)"
COLUMNS = {
    "task": pa.string(),
    "prompt": pa.string(),
    "response": pa.string(),
    "file": pa.string(),
    "line": pa.int64(),
}


class Rows:
    """Collects valid rows; an invalid one raises, or (skip_invalid) is set aside."""

    def __init__(self, spec: TaggedSpec, render: Render) -> None:
        self.spec, self.render = spec, render
        self.task: list[str] = []
        self.prompt: list[str] = []
        self.response: list[str] = []
        self.file: list[str] = []
        self.line: list[int] = []
        self.messages: list[str] = []  # chat rows: the whole conversation as JSON
        self.rejected: list[dict[str, Any]] = []
        self.chunks: list[pa.Table] = []  # rows so far, as tables, in input order

    def add(self, obj: Mapping[str, Any], file: str, line: int, unit: str, raw: Any) -> None:
        checked = self._check(obj)
        if isinstance(checked, str):
            self.reject(file, line, unit, checked, raw)
            return
        *texts, chat = checked
        for role, text in zip(("task", "prompt", "response"), texts, strict=True):
            if not _is_utf8(text):
                reason = (
                    f"the {role} holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape), "
                    "which no text encoding can store: fix or remove the escape"
                )
                self.reject(file, line, unit, reason, raw)
                return
        self.task.append(checked[0])
        self.prompt.append(checked[1])
        self.response.append(checked[2])
        self.file.append(file)
        self.line.append(line)
        if chat is not None:
            self.messages.append(chat)

    def reject(self, file: str, line: int, unit: str, reason: str, raw: Any) -> None:
        if not self.spec.skip_invalid:
            where = f"{file}:{line}" if unit == "line" else f"{file}: row {line}"
            raise RaremixError(f"{where}: {reason} {SKIP_HINT}")
        self.rejected.append({"file": file, unit: line, "reason": reason, "input": raw})

    def _text(self, obj: Mapping[str, Any], role: str, *, empty_ok: bool) -> str:
        """The string in the field mapped to `role`, or raise ValueError with the reason."""
        name = getattr(self.spec, role)
        if name not in obj:
            fields = ", ".join(sorted(map(str, obj))[:8]) or "none"
            raise ValueError(
                f"no field '{name}' (fields: {fields}): add it, or map the {role} field with --{role}-col"
            )
        value = obj[name]
        if value is None:
            raise ValueError(f"'{name}' is null: fill it in")
        if not isinstance(value, str):
            raise ValueError(
                f"'{name}' must be a string, not {type(value).__name__}: write it as text"
            )
        if not empty_ok and not value.strip():
            label = f"'{name}'" if name == role else f"'{name}' (the {role})"
            raise ValueError(f"{label} is empty: fill it in")
        return value

    def _check(self, obj: Mapping[str, Any]) -> tuple[str, str, str, str | None] | str:
        """(task, prompt, response, the conversation as JSON for chat rows), or the reason
        the row is invalid."""
        try:
            task = self._text(obj, "task", empty_ok=False)
            if self.spec.messages is None:
                return (
                    task,
                    self._text(obj, "prompt", empty_ok=True),
                    self._text(obj, "response", empty_ok=False),
                    None,
                )
            name = self.spec.messages
            if name not in obj:
                fields = ", ".join(sorted(map(str, obj))[:8]) or "none"
                return (
                    f"no field '{name}' (fields: {fields}): add it, or map it with --messages-col"
                )
        except ValueError as err:
            return str(err)
        messages = obj[name]
        if isinstance(messages, str):  # CSV keeps a list as JSON text
            try:
                messages = json.loads(messages)
            except (ValueError, RecursionError):
                return f"'{name}' is text that is not a JSON list of turns: write it as a list"
        split = split_messages(messages)
        if isinstance(split, str):
            return f"'{name}' {split}"
        turns, reply = split
        chat = json.dumps([*turns, {"role": "assistant", "content": reply}], ensure_ascii=False)
        return task, self.render(turns), reply, chat

    def add_valid(self, table: pa.Table) -> None:
        """Append rows already known to be valid (task, prompt, response, file, line)."""
        self._flush()
        self.chunks.append(table)

    def _flush(self) -> None:
        if self.task:
            self.chunks.append(
                pa.table(
                    {
                        "task": pa.array(self.task, pa.string()),
                        "prompt": pa.array(self.prompt, pa.string()),
                        "response": pa.array(self.response, pa.string()),
                        "file": pa.array(self.file, pa.string()),
                        "line": pa.array(self.line, pa.int64()),
                        **self._messages(self.messages),
                    }
                )
            )
            self.task, self.prompt, self.response, self.file, self.line = [], [], [], [], []
            self.messages = []

    def _messages(self, values: list[str]) -> dict[str, pa.Array]:
        """The `messages` column of chat rows; nothing for prompt/response rows."""
        return {} if self.spec.messages is None else {"messages": pa.array(values, pa.string())}

    def drain(self) -> tuple[list[pa.Table], list[dict[str, Any]]]:
        """The valid rows (as tables) and the rejected rows collected since the last
        drain, handed over and forgotten: what keeps a streaming read's memory bounded."""
        self._flush()
        out = self.chunks, self.rejected
        self.chunks, self.rejected = [], []
        return out

    def table(self) -> pa.Table:
        self._flush()
        if not self.chunks:
            empty = {c: pa.array([], t) for c, t in COLUMNS.items()}
            return pa.table({**empty, **self._messages([])})
        return pa.concat_tables(self.chunks).combine_chunks()


def _is_utf8(text: str) -> bool:
    """Whether `text` can be stored: JSON's \\ud800 escapes decode to unencodable surrogates."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_valid(table: pa.Table, task: str, prompt: str, response: str) -> bool:
    """Whether every row passes `Rows._check`, decided on whole columns (the fast path)."""
    import pyarrow.compute as pc

    cols = [table.column(c) for c in (task, prompt, response)]
    if not all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in cols):
        return False
    if any(c.null_count for c in cols):
        return False
    for c in (cols[0], cols[2]):  # task and response must not be blank
        if pc.any(pc.equal(pc.utf8_trim_whitespace(c), "")).as_py():
            return False
    return True
