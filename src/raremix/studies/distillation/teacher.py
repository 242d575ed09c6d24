"""The distillation study's teacher: labelling inputs with it, and its cache.

`label_with_teacher` greedy-decodes answers and keeps the teacher's top-k logits at each
answer position (the soft targets); `true_labelled` puts true labels in the same layout.
`TeacherCache` trains one teacher per config (an ordinary trainer run) and labels pool
inputs in chunks, under an exclusive file lock, publishing each finished file by atomic
rename: the students of a seed share one teacher, and two worker processes never train
or label the same thing twice. A killed teacher resumes from its trainer checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from raremix.config import TrainConfig

POOL_OFFSET = 1 << 32
"""Pool inputs are training-split examples with indices from here on: never the labelled
set's indices (0..size-1), though a small input space may repeat an input."""
LABEL_KEYS = ("idx", "targets", "topk_ids", "topk_logits")
"""A labelled set: idx, targets (N, T); topk_ids, topk_logits (N, T, K)."""


@torch.no_grad()
def label_with_teacher(
    teacher: torch.nn.Module,
    prompts: torch.Tensor,
    lengths: torch.Tensor,
    *,
    max_new: int,
    top_k: int,
    eos_id: int,
    pad_id: int,
    block_size: int,
) -> dict[str, torch.Tensor]:
    """Greedy-decode answers for right-padded prompts (B, P) of `lengths` (B,).

    Returns idx, targets (B, block_size): the prompt plus the teacher's answer through its
    first `<eos>` (at most `max_new` + 1 tokens), targets -100 off the answer; and topk_ids,
    topk_logits (B, block_size, K): the teacher's top-k at each answer position (the very
    distributions the greedy decoding read, as attention is causal).
    """
    teacher.eval()
    b = prompts.shape[0]
    rows = torch.arange(b)
    idx = torch.full((b, block_size), pad_id, dtype=torch.long)
    idx[:, : prompts.shape[1]] = prompts
    targets = torch.full((b, block_size), -100, dtype=torch.long)
    topk_ids = torch.zeros((b, block_size, top_k), dtype=torch.long)
    topk_logits = torch.full((b, block_size, top_k), -torch.inf)
    done = torch.zeros(b, dtype=torch.bool)
    for j in range(max_new + 1):
        pos = lengths - 1 + j  # (B,) position whose output is answer token j
        width = int(pos.max()) + 1
        logits = teacher(idx[:, :width])[rows, pos]  # (B, V)
        vals, ids = logits.float().topk(top_k, dim=-1)  # (B, K)
        nxt = ids[:, 0]
        live = ~done
        targets[rows[live], pos[live]] = nxt[live]
        topk_ids[rows[live], pos[live]] = ids[live]
        topk_logits[rows[live], pos[live]] = vals[live]
        if pos.max() + 1 < block_size:
            idx[rows[live], pos[live] + 1] = nxt[live]
        done |= nxt == eos_id
        if bool(done.all()):
            break
    return {"idx": idx, "targets": targets, "topk_ids": topk_ids, "topk_logits": topk_logits}


def true_labelled(
    tok: Any, prefix: list[int], inputs: list[str], answers: list[str], top_k: int, block_size: int
) -> dict[str, torch.Tensor]:
    """The labelled set in `label_with_teacher`'s layout: the true answer as a one-hot top-k."""
    batch = tok.encode([prefix] * len(inputs), inputs, answers)
    b, t = batch.idx.shape
    idx = F.pad(batch.idx, (0, block_size - t), value=tok.pad_id)
    targets = F.pad(batch.targets, (0, block_size - t), value=-100)
    topk_ids = torch.zeros((b, block_size, top_k), dtype=torch.long)
    topk_logits = torch.full((b, block_size, top_k), -torch.inf)
    on = targets != -100
    topk_ids[..., 0] = targets.clamp(min=0)
    topk_logits[..., 0] = torch.where(on, 0.0, -torch.inf)
    return {"idx": idx, "targets": targets, "topk_ids": topk_ids, "topk_logits": topk_logits}


# --- the teacher cache -----------------------------------------------------------------


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if absent), released when the holder exits or dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _publish(path: Path, write: Any) -> None:
    """Write a file under a temporary name with `write(tmp)`, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class TeacherCache:
    """One seed's teacher and its pool labels: `<root>/<config hash>/`.

    `ensure()` trains the teacher (resuming its checkpoint) unless `done.json` says it is
    finished; `labels(task, n)` returns the first n pool labels, labelling missing chunks.
    Both work under the cache's file lock; finished files are renamed into place.
    """

    def __init__(self, root: Path, teacher: TrainConfig, top_k: int = 8, chunk: int = 4096) -> None:
        self.teacher_cfg, self.top_k, self.chunk = teacher, top_k, chunk
        self.dir = Path(root) / teacher.hash()
        self.lock = self.dir / ".lock"
        self._model: torch.nn.Module | None = None
        self.trained_here = False  # whether this object trained the teacher (vs found it cached)
        self._data: Any = None

    @property
    def done(self) -> bool:
        return (self.dir / "done.json").exists()

    def ensure(self) -> dict[str, Any]:
        """Train the teacher if no finished one is cached; return its facts."""
        if not self.done:
            with exclusive(self.lock):
                if not self.done:  # another worker may have finished it while we waited
                    from raremix.trainer import train

                    state = train(self.teacher_cfg, self.dir)
                    self.trained_here = True
                    facts = {**state.facts, "steps": state.step}
                    _publish(self.dir / "done.json", lambda p: p.write_text(json.dumps(facts)))
        return dict(json.loads((self.dir / "done.json").read_text()))

    @property
    def data(self) -> Any:
        """The teacher's `TaskData` (tasks, prefixes, tokenizer, block size)."""
        if self._data is None:
            from raremix.data import TaskData

            self._data = TaskData(
                self.teacher_cfg, [s.name for s in self.teacher_cfg.mixture.sources]
            )
        return self._data

    def model(self) -> torch.nn.Module:
        """The finished teacher, loaded from its last checkpoint."""
        if self._model is None:
            from raremix.checkpoint import CKPT, load_weights
            from raremix.model import GPT

            self.ensure()
            data = self.data
            model = GPT(self.teacher_cfg.model.build(data.tokenizer.size, data.block_size))
            load_weights(self.dir / CKPT, model)  # checksums verified
            self._model = model.eval()
        return self._model

    def _chunk_path(self, task: str, i: int) -> Path:
        return self.dir / "labels" / f"{task}.k{self.top_k}.n{self.chunk}.{i:05d}.safetensors"

    def labels(self, task: str, n: int) -> dict[str, torch.Tensor]:
        """The teacher's labels of the first `n` pool inputs of `task` (see `label_with_teacher`)."""
        size = self.chunk
        chunks = range((n + size - 1) // size)
        missing = [i for i in chunks if not self._chunk_path(task, i).exists()]
        if missing:
            with exclusive(self.lock):
                for i in missing:
                    path = self._chunk_path(task, i)
                    if not path.exists():
                        path.parent.mkdir(parents=True, exist_ok=True)
                        out = self._label_chunk(task, i)
                        _publish(path, lambda p, out=out: save_file(out, str(p)))
        parts = [load_file(self._chunk_path(task, i)) for i in chunks]  # no pickle: no code runs
        if not parts:
            return {}
        out = {k: torch.cat([p[k] for p in parts])[:n] for k in LABEL_KEYS}
        return {k: v.float() if k == "topk_logits" else v.long() for k, v in out.items()}

    def _label_chunk(self, task: str, i: int) -> dict[str, torch.Tensor]:
        data, size = self.data, self.chunk
        index = POOL_OFFSET + np.arange(i * size, (i + 1) * size, dtype=np.int64)
        inputs, _ = data.examples(task, index, self.teacher_cfg.seed, "train")
        tok = data.tokenizer
        prompts, lengths = tok.encode_prompts([data.prefixes[task]] * len(inputs), inputs)
        with torch.inference_mode():
            out = label_with_teacher(
                self.model(),
                prompts,
                lengths,
                max_new=data.tasks[task].max_answer_len,
                top_k=self.top_k,
                eos_id=tok.eos_id,
                pad_id=tok.pad_id,
                block_size=data.block_size,
            )
        # stored compactly (ids < 32768; half precision is plenty for soft targets)
        return {k: v.half() if k == "topk_logits" else v.short() for k, v in out.items()}
