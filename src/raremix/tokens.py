"""The shared character-level vocabulary, task framings, and batch encoding.

One vocabulary serves every task: `<pad>` (id 0), `<sep>`, `<eos>`, one token per
registered task (`<copy>`, ...), then every character a task's inputs, answers,
instruction or output-space text can contain. It is built from the task registry, sorted,
so ids are stable for a given registry.

A training sequence is `prefix + input + <sep> + answer + <eos>`; the prefix is the task's
framing (`FRAMINGS`) and the loss is on the answer and `<eos>` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import torch

from raremix.errors import RaremixError, unknown
from raremix.tasks import TASKS, Task, make_task

Framing = Literal["token", "instruction", "empty", "wrong", "output_space"]
FRAMINGS: tuple[Framing, ...] = get_args(Framing)
PAD, SEP, EOS = "<pad>", "<sep>", "<eos>"
FRAME_SEP = ": "
"""Ends a text prefix, so "reverse the digits: 123<sep>321<eos>" reads naturally."""
IGNORE = -100
"""Target value where no loss is taken (PyTorch's cross-entropy `ignore_index`)."""

_BASE_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz" + " :"
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TokenBatch:
    """A right-padded batch of framed examples, ready for next-token loss."""

    idx: torch.Tensor
    """(B, T) token ids, `<pad>` after each sequence's `<eos>`."""
    targets: torch.Tensor
    """(B, T) the next token where it is an answer token or `<eos>`, else -100."""
    answer_start: torch.Tensor
    """(B,) position of the first answer token (the one after `<sep>`)."""
    lengths: torch.Tensor
    """(B,) tokens in each sequence, `<eos>` included."""
    source: torch.Tensor | None = None
    """(B,) the mixture source id of each example, where a sampler chose them (the ledger's split)."""


class Tokenizer:
    """The vocabulary (specials, task tokens, characters) with framing and batch encoding.

    `Tokenizer()` covers every registered task at its default complexity; pass `tasks`
    to cover others (your own `Task` implementations, say).
    """

    def __init__(self, tasks: Iterable[Task] | None = None) -> None:
        tasks = [make_task(n) for n in TASKS] if tasks is None else list(tasks)
        names = sorted({t.name for t in tasks})
        chars = set(_BASE_CHARS)
        for t in tasks:
            chars.update(t.alphabet, t.instruction, t.output_space)
        charset = sorted(chars)
        for c in charset:
            if not (c.isascii() and c.isprintable()):
                raise RaremixError(
                    f"task character {c!r} is not printable ASCII: tasks must use ASCII text"
                )
        self.tokens: tuple[str, ...] = (PAD, SEP, EOS, *(f"<{n}>" for n in names), *charset)
        self.pad_id, self.sep_id, self.eos_id = 0, 1, 2
        self._task_ids = {n: 3 + i for i, n in enumerate(names)}
        self._lut = np.full(256, -1, dtype=np.int64)  # byte → id, -1 where not in vocab
        self._lut[0] = self.pad_id  # the zero bytes that pad a batch of texts
        for i, c in enumerate(charset):
            self._lut[ord(c)] = 3 + len(names) + i

    @property
    def size(self) -> int:
        return len(self.tokens)

    def task_id(self, name: str) -> int:
        """Id of the `<name>` task token."""
        if name not in self._task_ids:
            raise unknown("task", name, self._task_ids)
        return self._task_ids[name]

    # -- text ---------------------------------------------------------------------------

    def _grid(self, texts: Sequence[str]) -> tuple[I64, I64]:
        """Ids (B, W), `<pad>` past each text's end, and lengths (B,): one table lookup."""
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))  # (B,)
        try:
            packed = np.array(texts, dtype="S")  # (B,) NUL-padded bytes
        except UnicodeEncodeError as err:
            raise self._unknown_char(err.object[err.start]) from None
        w = packed.dtype.itemsize if len(texts) else 0
        raw = packed.view(np.uint8).reshape(len(texts), w)  # (B, W)
        ids = self._lut[raw]  # (B, W); byte 0 (padding) maps to <pad>
        # A text with an unknown character, or a NUL that would pass for padding.
        bad = (ids < 0).any(axis=1) | (np.count_nonzero(raw, axis=1) != lengths)  # (B,)
        if bad.any():
            text = texts[int(bad.argmax())]
            raise self._unknown_char(next(c for c in text if c == "\0" or self._lut[ord(c)] < 0))
        return ids, lengths

    def _unknown_char(self, c: str) -> RaremixError:
        return RaremixError(
            f"character {c!r} is not in the raremix vocabulary: use only characters that the "
            "registered tasks use (digits, lowercase letters, space and task punctuation)"
        )

    def encode_text(self, text: str) -> list[int]:
        """Character ids of `text` (no special tokens)."""
        ids: list[int] = self._grid([text])[0][0].tolist()
        return ids

    def decode(self, ids: Sequence[int] | npt.NDArray[np.integer] | torch.Tensor) -> str:
        """Text of `ids` up to the first `<eos>`; other special tokens appear by name, so a
        stray `<pad>` or task token in an answer makes it (rightly) fail verification."""
        out = []
        for i in ids.tolist() if isinstance(ids, np.ndarray | torch.Tensor) else ids:
            if i == self.eos_id:
                break
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else "<?>")
        return "".join(out)

    def decode_batch(self, ids: npt.NDArray[np.integer] | torch.Tensor) -> list[str]:
        """`decode` for each row of a (B, T) array."""
        return [self.decode(row) for row in ids.tolist()]

    # -- framing -----------------------------------------------------------------------

    def prefix(self, task: Task, framing: str = "token", other: Task | None = None) -> list[int]:
        """The ids that tell the model which task to do, under one of `FRAMINGS`.

        "wrong" uses `other`'s instruction, or by default that of the next registered task
        (in name order) whose instruction differs: deterministic, so runs compare.
        """
        if framing == "token":
            return [self.task_id(task.name)]
        if framing == "instruction":
            return self.encode_text(task.instruction + FRAME_SEP)
        if framing == "empty":
            return []
        if framing == "output_space":
            return self.encode_text(task.output_space + FRAME_SEP)
        if framing == "wrong":
            decoy = other if other is not None else _default_decoy(task)
            if decoy.instruction == task.instruction:
                raise RaremixError(
                    f"'wrong' framing for task '{task.name}' needs another task's instruction, "
                    f"got '{decoy.name}' with the same one: pass a different task"
                )
            return self.encode_text(decoy.instruction + FRAME_SEP)
        raise unknown("framing", framing, FRAMINGS)

    def sequence_length(self, task: Task, framing: str = "token") -> int:
        """The longest sequence `task` can produce under `framing` (for a block size)."""
        return len(self.prefix(task, framing)) + task.max_input_len + task.max_answer_len + 2

    # -- batches -----------------------------------------------------------------------

    def _prefix_grid(self, prefixes: Sequence[Sequence[int]]) -> tuple[I64, I64]:
        """Prefixes as ids (B, P), `<pad>` after each, and lengths (B,).

        A batch holds few distinct prefix objects (one per task and framing), so rows are
        filled per object rather than per token.
        """
        lengths = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))  # (B,)
        rows_of: dict[int, list[int]] = {}
        for r, p in enumerate(prefixes):
            rows_of.setdefault(id(p), []).append(r)
        grid = np.full((len(prefixes), int(lengths.max(initial=0))), self.pad_id, np.int64)
        for rows in rows_of.values():
            p = prefixes[rows[0]]
            grid[rows, : len(p)] = p  # (R, len(p)) one prefix broadcast over its rows
        if grid.size and (grid.min() < 0 or grid.max() >= self.size):
            raise RaremixError(
                f"prefix token ids must be in [0, {self.size}): build them with prefix()"
            )
        return grid, lengths

    def encode(
        self, prefixes: Sequence[Sequence[int]], inputs: Sequence[str], answers: Sequence[str]
    ) -> TokenBatch:
        """Right-padded `prefix + input + <sep> + answer + <eos>` with answer-only targets."""
        b = _same_length(prefixes=prefixes, inputs=inputs, answers=answers)
        p_ids, p_len = self._prefix_grid(prefixes)  # (B, P), (B,)
        x_ids, x_len = self._grid(inputs)  # (B, X), (B,)
        y_ids, y_len = self._grid(answers)  # (B, Y), (B,)
        start = p_len + x_len + 1  # (B,) first answer position
        lengths = start + y_len + 1  # (B,) through <eos>
        rows = np.arange(b)
        # Segments go in left to right; each one's trailing <pad> is overwritten by the next.
        idx = np.full((b, p_ids.shape[1] + x_ids.shape[1] + y_ids.shape[1] + 2), self.pad_id)
        idx[:, : p_ids.shape[1]] = p_ids
        _put(idx, x_ids, p_len)
        idx[rows, start - 1] = self.sep_id
        _put(idx, y_ids, start)
        idx[rows, lengths - 1] = self.eos_id
        idx = np.ascontiguousarray(idx[:, : max(int(lengths.max(initial=0)), 1)])  # (B, T)
        # Position t predicts token t + 1: keep it where t + 1 is an answer token or <eos>.
        t = np.arange(idx.shape[1])[None, :]  # (1, T)
        wanted = (t >= start[:, None] - 1) & (t < lengths[:, None] - 1)  # (B, T)
        following = np.empty_like(idx)  # (B, T)
        following[:, :-1], following[:, -1] = idx[:, 1:], self.pad_id
        targets = np.where(wanted, following, IGNORE)  # (B, T)
        return TokenBatch(
            idx=torch.from_numpy(idx),
            targets=torch.from_numpy(targets),
            answer_start=torch.from_numpy(start),
            lengths=torch.from_numpy(lengths),
        )

    def encode_prompts(
        self,
        prefixes: Sequence[Sequence[int]],
        inputs: Sequence[str],
        side: Literal["left", "right"] = "right",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`prefix + input + <sep>` for generation: ids (B, T) padded on `side`, lengths (B,).

        Right padding keeps positions as in training (models with learned positions want
        that); left padding lines every prompt's end up for simple batched decoding.
        """
        if side not in ("left", "right"):
            raise unknown("padding side", str(side), ("left", "right"))
        b = _same_length(prefixes=prefixes, inputs=inputs)
        p_ids, p_len = self._prefix_grid(prefixes)  # (B, P), (B,)
        x_ids, x_len = self._grid(inputs)  # (B, X), (B,)
        lengths = p_len + x_len + 1  # (B,) through <sep>
        width = max(int(lengths.max(initial=0)), 1)
        shift = width - lengths if side == "left" else np.zeros(b, dtype=np.int64)  # (B,)
        # Spare columns on the right take the segments' trailing <pad>, then are cut off.
        idx = np.full((b, width + p_ids.shape[1] + x_ids.shape[1]), self.pad_id)
        _put(idx, p_ids, shift)
        _put(idx, x_ids, shift + p_len)
        idx[np.arange(b), shift + lengths - 1] = self.sep_id
        return torch.from_numpy(np.ascontiguousarray(idx[:, :width])), torch.from_numpy(lengths)


def _put(out: I64, values: I64, starts: I64) -> None:
    """out[r, starts[r] : starts[r] + W] = values[r] for every row r; values is (B, W)."""
    w = values.shape[1]
    if w:
        out[np.arange(len(out))[:, None], starts[:, None] + np.arange(w)] = values  # (B, W)


def _same_length(**seqs: Sequence[object]) -> int:
    sizes = {k: len(v) for k, v in seqs.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}={n}" for k, n in sizes.items())
        raise RaremixError(f"batch parts differ in length ({shown}): pass one of each per example")
    return next(iter(sizes.values()))


def _default_decoy(task: Task) -> Task:
    """The next registered task after `task` in name order whose instruction differs."""
    names = sorted(TASKS)
    after = [n for n in names if n > task.name] + [n for n in names if n <= task.name]
    for name in after:
        other = make_task(name)
        if other.instruction != task.instruction:
            return other
    raise RaremixError("'wrong' framing needs a second task: register one")


@cache
def default_tokenizer() -> Tokenizer:
    """The tokenizer of every registered task at its default complexity (built once)."""
    return Tokenizer()


# The default tokenizer's methods as functions, for the common case of one registry.


def prefix(task: Task, framing: str = "token", other: Task | None = None) -> list[int]:
    """`Tokenizer.prefix` with the default tokenizer."""
    return default_tokenizer().prefix(task, framing, other)


def encode(
    prefixes: Sequence[Sequence[int]], inputs: Sequence[str], answers: Sequence[str]
) -> TokenBatch:
    """`Tokenizer.encode` with the default tokenizer."""
    return default_tokenizer().encode(prefixes, inputs, answers)


def encode_prompts(
    prefixes: Sequence[Sequence[int]],
    inputs: Sequence[str],
    side: Literal["left", "right"] = "right",
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Tokenizer.encode_prompts` with the default tokenizer."""
    return default_tokenizer().encode_prompts(prefixes, inputs, side)


def decode(ids: Sequence[int] | npt.NDArray[np.integer] | torch.Tensor) -> str:
    """`Tokenizer.decode` with the default tokenizer."""
    return default_tokenizer().decode(ids)
