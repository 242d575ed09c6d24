"""What a task is: the `Task` protocol, its `Examples`, and `SynthTask`, the one concrete
synthetic task, assembled from a few pure functions rather than subclassed."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from raremix import seeding
from raremix.errors import RaremixError, unknown
from raremix.tasks.draws import Draws, example_keys
from raremix.tasks.split import codes_hash, heldout_codes, in_heldout
from raremix.tasks.text import U8, rows_to_strings, strings_to_rows

Kind = Literal["structured", "open"]
Split = Literal["train", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "heldout")
BoolArray = npt.NDArray[np.bool_]

DrawInputs = Callable[[Draws], U8]
"""Canonical inputs for a batch of draws: (B, W) ASCII codes, zero bytes are padding."""
Solve = Callable[[list[str], Draws], list[str]]
"""Reference answers; structured tasks ignore the draws, open tasks pick a valid answer."""
Accept = Callable[[list[str], list[str]], BoolArray]
"""Open tasks: which outputs are valid answers to their inputs."""

_MAX_ATTEMPTS = 4096  # candidates per example before a split is declared empty
_ANSWER_SALT = seeding.salt("task.answer")


def _name_salt(name: str) -> int:
    """A stable per-task salt (Python's hash() of a str changes between processes)."""
    return seeding.splitmix64_int(zlib.crc32(name.encode()))


@dataclass(frozen=True)
class Examples:
    """A batch of examples: canonical inputs (no framing) and one reference answer each."""

    inputs: list[str]
    answers: list[str]

    def __len__(self) -> int:
        return len(self.inputs)


class Task(Protocol):
    """Anything the tokenizer, sampler and probes can treat as a task."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def complexity(self) -> int: ...
    @property
    def instruction(self) -> str: ...
    @property
    def output_space(self) -> str: ...
    @property
    def subtasks(self) -> tuple[str, ...]: ...
    @property
    def alphabet(self) -> str: ...
    @property
    def max_input_len(self) -> int: ...
    @property
    def max_answer_len(self) -> int: ...

    def generate(self, indices: npt.ArrayLike, seed: int, split: Split) -> Examples: ...
    def in_heldout(self, inputs: Sequence[str]) -> BoolArray: ...
    def verify(self, inputs: Sequence[str], outputs: Sequence[str]) -> BoolArray: ...


@dataclass(frozen=True)
class Knob:
    """A task's complexity knob: what the number means and which values are valid."""

    name: str
    lo: int
    hi: int
    odd: bool = False

    def __str__(self) -> str:
        return f"{self.name} {self.lo}..{self.hi}" + (" (odd)" if self.odd else "")

    def checked(self, task: str, value: int) -> Knob:
        """This knob, after rejecting `value` with a one-line error naming the valid range."""
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
        ok = ok and self.lo <= value <= self.hi and not (self.odd and value % 2 == 0)
        if not ok:
            what = "an odd integer" if self.odd else "an integer"
            raise RaremixError(
                f"task '{task}': complexity ({self.name}) must be {what} from {self.lo} to "
                f"{self.hi}, got {value!r}: pick one in that range"
            )
        return self


@dataclass(frozen=True)
class SynthTask:
    """A synthetic task: metadata plus pure functions that draw inputs and answers.

    `generate` is deterministic per (seed, index, split): candidates are drawn from keys
    (seed, split, index, attempt) and the first whose input lands in the requested split
    is kept, so example i never depends on the rest of its batch.
    """

    name: str
    kind: Kind
    complexity: int
    instruction: str
    """What to do, in lowercase words: the 'instruction' framing."""
    output_space: str
    """Only the shape of the answer: the 'output_space' framing."""
    alphabet: str
    """Every character inputs and answers may contain; the vocabulary is built from it."""
    knob: Knob
    """What `complexity` means for this task, and its valid range."""
    max_input_len: int
    max_answer_len: int
    draw_inputs: DrawInputs = field(repr=False)
    solve: Solve = field(repr=False)
    accept: Accept | None = field(default=None, repr=False)
    """None for structured tasks: the answer `solve` gives is the only valid one."""
    subtasks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "open") != (self.accept is not None):
            raise ValueError(f"{self.name}: open tasks need `accept`, structured ones must not")

    def generate(self, indices: npt.ArrayLike, seed: int, split: Split) -> Examples:
        """Examples `indices` of this task's `split` stream under `seed`."""
        if split not in SPLITS:
            raise unknown("split", str(split), SPLITS)
        idx = np.asarray(indices).reshape(-1)
        if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0):
            raise RaremixError(f"task '{self.name}': indices must be non-negative integers")
        idx = idx.astype(np.int64)
        if idx.size == 0:
            return Examples(inputs=[], answers=[])
        # Salting the seed with the task name keeps tasks that share an input format
        # (copy, sort, permute) from drawing the same inputs under one seed.
        task_seed = int(seed) ^ _name_salt(self.name)
        want = split == "heldout"
        codes: U8 | None = None  # (B, W) the accepted input of each example
        keys = np.zeros(len(idx), dtype=np.uint64)  # (B,) the accepted candidate's key
        todo = np.arange(len(idx))  # examples still without an accepted candidate
        # The first round is ~3 / acceptance rate wide, so a second is rarely needed.
        start, width = 0, (12 if want else 4)
        while todo.size:
            if start >= _MAX_ATTEMPTS:
                raise RaremixError(
                    f"task '{self.name}' at complexity {self.complexity} has no {split} inputs: "
                    "raise its complexity"
                )
            cand_keys = example_keys(task_seed, split, idx[todo], start, width)  # (N, A)
            cands = self.draw_inputs(Draws(cand_keys.reshape(-1)))  # (N * A, W)
            hit = heldout_codes(cands) == want  # (N * A,)
            first = hit.reshape(len(todo), width).argmax(axis=1)  # (N,) earliest accepted
            pick = np.arange(len(todo)) * width + first  # (N,) its candidate row
            found = hit[pick]  # (N,)
            if codes is None:
                codes = np.zeros((len(idx), cands.shape[1]), dtype=np.uint8)
            elif cands.shape[1] > codes.shape[1]:
                codes = np.pad(codes, ((0, 0), (0, cands.shape[1] - codes.shape[1])))
            codes[todo[found], : cands.shape[1]] = cands[pick[found]]
            keys[todo[found]] = cand_keys.reshape(-1)[pick[found]]
            todo = todo[~found]
            start, width = start + width, width * 2
        assert codes is not None
        inputs = rows_to_strings(codes)
        answers = self.solve(inputs, Draws(keys).fork(_ANSWER_SALT))
        return Examples(inputs=inputs, answers=answers)

    def in_heldout(self, inputs: Sequence[str]) -> BoolArray:
        """(B,) True where an input is held out (the same rule for every task)."""
        return in_heldout(inputs)

    def verify(self, inputs: Sequence[str], outputs: Sequence[str]) -> BoolArray:
        """(B,) whether each output is a correct answer; malformed outputs are just False."""
        if len(inputs) != len(outputs):
            raise RaremixError(
                f"task '{self.name}': verify got {len(inputs)} inputs but {len(outputs)} outputs: "
                "pass one output per input"
            )
        ins, outs = list(inputs), list(outputs)
        if self.accept is not None:
            return self.accept(ins, outs)
        # Structured answers are unique, so the check is equality with the solver's answer.
        ref = self.solve(ins, Draws(np.zeros(len(ins), dtype=np.uint64)))  # draws unused
        return np.array(
            [isinstance(o, str) and o == r for o, r in zip(outs, ref, strict=True)], dtype=bool
        )

    def reference(self, inputs: Sequence[str]) -> list[str]:
        """A correct answer for any canonical inputs, e.g. to label inputs from elsewhere or
        to run a composite's steps. Open tasks pick one valid answer from a fixed key."""
        if not inputs:
            return []
        keys = codes_hash(strings_to_rows(inputs))  # (B,) the same input, the same answer
        return self.solve(list(inputs), Draws(keys))
