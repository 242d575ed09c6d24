"""From sampler decisions to token batches, and the fixed held-out sets each run evaluates on.

The sampler says *which* example (source id, example index); the task makes it (a pure
function of seed and index); the tokenizer frames and encodes it. Held-out sets use a
fixed seed, so every run of a study is scored on the same examples.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import torch

from raremix.config import TrainConfig
from raremix.tasks import EVAL_SEED as EVAL_SEED  # re-exported: where evaluation lives
from raremix.tasks import Task, baselines, heldout_set, make_task
from raremix.tokens import TokenBatch, Tokenizer


@dataclass(frozen=True)
class EvalSet:
    """A task's held-out examples, framed and encoded once."""

    task: Task
    prefixes: list[list[int]]
    inputs: list[str]
    answers: list[str]
    batch: TokenBatch

    def __len__(self) -> int:
        return len(self.inputs)

    @cached_property
    def baselines(self) -> dict[str, float]:
        """Chance, majority-class and heuristic accuracy on exactly these examples."""
        return baselines(self.task, self.inputs, self.answers)


class TaskData:
    """The run's tasks, framed and tokenised: turns sampler output into training batches."""

    def __init__(
        self, cfg: TrainConfig, names: list[str], tokenizer: Tokenizer | None = None
    ) -> None:
        self.cfg = cfg
        self.names = names  # in the sampler's source-id order
        self.tasks: dict[str, Task] = {
            name: make_task(spec.task or name, spec.complexity) for name, spec in cfg.tasks.items()
        }
        self.tokenizer = tokenizer or Tokenizer()
        order = list(self.tasks)
        self.prefixes: dict[str, list[int]] = {}
        for i, name in enumerate(order):
            other = self.tasks[
                order[(i + 1) % len(order)]
            ]  # the "wrong" framing borrows the next task's
            self.prefixes[name] = self.tokenizer.prefix(self.tasks[name], cfg.framing, other)

    @property
    def block_size(self) -> int:
        """Longest sequence any task can make under this framing: prefix + input + sep + answer + eos."""
        return max(
            len(self.prefixes[n]) + t.max_input_len + t.max_answer_len + 2
            for n, t in self.tasks.items()
        )

    def examples(
        self, name: str, indices: np.ndarray, seed: int, split: str
    ) -> tuple[list[str], list[str]]:
        ex = self.tasks[name].generate(indices, seed, split)  # type: ignore[arg-type]
        return ex.inputs, ex.answers

    def train_batch(self, sources: np.ndarray, indices: np.ndarray) -> TokenBatch:
        """Make and encode the examples the sampler chose, keeping the sampler's order."""
        return self.train_batches([(sources, indices)])[0]

    def train_batches(self, draws: list[tuple[np.ndarray, np.ndarray]]) -> list[TokenBatch]:
        """Several batches at once: one generator call per task for all of them.

        Examples depend only on (seed, index), so grouping never changes them; each batch
        is still encoded (padded) on its own, exactly as `train_batch` would.
        """
        sources = np.concatenate([s for s, _ in draws])
        indices = np.concatenate([i for _, i in draws])
        n = len(sources)
        inputs: list[str] = [""] * n
        answers: list[str] = [""] * n
        prefixes: list[list[int]] = [[]] * n
        for sid in np.unique(sources):
            name = self.names[int(sid)]
            rows = np.flatnonzero(sources == sid)
            ins, ans = self.examples(name, indices[rows], self.cfg.seed, "train")
            for r, i, a in zip(rows.tolist(), ins, ans, strict=True):
                inputs[r], answers[r], prefixes[r] = i, a, self.prefixes[name]
        out, start = [], 0
        for s, _ in draws:
            end = start + len(s)
            batch = self.tokenizer.encode(
                prefixes[start:end], inputs[start:end], answers[start:end]
            )
            out.append(replace(batch, source=torch.as_tensor(s, dtype=torch.int64)))
            start = end
        return out

    def eval_sets(self, n: int) -> dict[str, EvalSet]:
        """Up to `n` distinct held-out examples per task (never in training: the tasks' split
        guarantees it); fewer only when the task's held-out space is smaller than `n`."""
        out = {}
        seed = EVAL_SEED + self.cfg.eval_seed  # a confirmation run draws a fresh held-out set
        for name, task in self.tasks.items():
            held = heldout_set(task, n, seed)
            ins, ans = held.inputs, held.answers
            pre = [self.prefixes[name]] * len(ins)
            out[name] = EvalSet(
                self.tasks[name], pre, ins, ans, self.tokenizer.encode(pre, ins, ans)
            )
        return out


class Batcher(Protocol):
    """Makes the training batches of sampler draws ((source ids, example indices) each)."""

    def train_batches(self, draws: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]: ...


class BatchStream:
    """Training batches drawn `chunk` steps ahead (per-task generation costs per call, not per
    example), with a resumable state that points at the next batch *consumed*."""

    def __init__(self, sampler: Any, data: Batcher, total_steps: int, chunk: int = 16) -> None:
        self.sampler, self.data, self.total, self.chunk = sampler, data, total_steps, chunk
        self._ready: deque[TokenBatch] = deque()
        self._start: dict[str, Any] = sampler.state_dict()  # sampler state before the chunk
        self._used = 0  # batches of the current chunk handed out
        self._ended = False
        self.controller: dict[str, Any] | None = None
        """State of whatever steers this stream's weights (an adaptive mixing rule): saved
        and restored with the stream, so a resumed run steers exactly as before."""

    def next(self, step: int) -> TokenBatch | None:
        """The batch for `step`, or None once the mixture's stream has ended (`stop` sources)."""
        if not self._ready and not self._ended:
            self._start, self._used = self.sampler.state_dict(), 0
            draws = []
            for _ in range(min(self.chunk, self.total - step)):
                try:
                    draws.append(self.sampler.next_batch())
                except StopIteration:
                    self._ended = True
                    break
            self._ready.extend(self.data.train_batches(draws) if draws else [])
        if not self._ready:
            return None
        self._used += 1
        return self._ready.popleft()

    @property
    def exhausted(self) -> bool:
        """True once the mixture's stream has ended and every drawn batch was handed out.

        The sampler knows it has ended as soon as it draws a short batch, so a stream that
        ends exactly at a look-ahead chunk's boundary is seen to end with its last batch."""
        return (self._ended or bool(getattr(self.sampler, "ended", False))) and not self._ready

    def set_weights(self, weights: Any) -> None:
        """Target weights from the next batch handed out on (`MixtureSampler.set_weights`).

        The look-ahead drawn under the old weights is dropped: the sampler rewinds to the
        batches actually consumed and draws afresh, so the stream — and a resume from any
        checkpoint — is exactly as if the weights had changed at this step.
        """
        self.sampler.load_state_dict(self._start)
        for _ in range(self._used):
            self.sampler.skip_batch()
        self.sampler.set_weights(weights)
        self._ready.clear()
        self._start, self._used, self._ended = self.sampler.state_dict(), 0, False

    def state_dict(self) -> dict[str, Any]:
        state = {"sampler": self._start, "skip": self._used}
        return state if self.controller is None else {**state, "controller": self.controller}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        for _ in range(state.get("skip", 0)):
            self.sampler.skip_batch()
        self._ready.clear()
        self._start, self._used, self._ended = self.sampler.state_dict(), 0, False
        self.controller = state.get("controller")


def to_device(batch: TokenBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return batch.idx.to(device, non_blocking=True), batch.targets.to(device, non_blocking=True)
