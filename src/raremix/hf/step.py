"""`HFStep`: any Hugging Face causal LM as a step module of the one loop.

A batch is `(input_ids, attention_mask, labels)` encoded from the rows the sampler chose
(loss on response tokens only); evaluation is greedy generation judged per task
(`raremix.hf.evaluate`). After the last step rank 0 writes the trained model and
tokenizer to `run_dir/model/` and the last evaluation to `run_dir/lm_eval/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from raremix.data import BatchStream
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.hf.config import HFTrainConfig
from raremix.hf.data import Examples, SynthExamples, TaggedExamples, encode
from raremix.hf.evaluate import evaluate_hf
from raremix.hf.lmeval import lmeval_results, write_lmeval
from raremix.loss import Batches
from raremix.mixture import build_sampler
from raremix.optim import make_optimizer, update
from raremix.probes import shift_labels
from raremix.schedules import eval_steps, peak_lr
from raremix.state import TrainState
from raremix.steps import Stream

HFBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(input_ids, attention_mask, labels), each (B, T), right-padded; labels aligned with inputs."""


def load_model(path: str | Path, tokenizer: str | None) -> tuple[torch.nn.Module, Any]:
    """AutoModelForCausalLM and AutoTokenizer from local folders (or hub names)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RaremixError(
            "raremix hf-train needs transformers: pip install 'raremix[hf]'"
        ) from err
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # raremix's own bars say how the run goes
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer or path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except OSError as err:
        raise RaremixError(
            f"cannot load model or tokenizer '{tokenizer or path}' ({str(err).splitlines()[0][:120]}): give a local folder written by save_pretrained"
        ) from None
    if tok.eos_token_id is None:
        raise RaremixError(
            f"tokenizer '{tokenizer or path}' has no eos token: set one (responses end with it)"
        )
    return model, tok


def make_examples(cfg: HFTrainConfig, table: pa.Table | None = None) -> Examples:
    """The run's examples: `table` or `cfg.data` (tagged rows), else `cfg.tasks` (synthetic)."""
    if table is None and cfg.data is not None:
        from raremix.tagged import read_spec

        table = read_spec(cfg.data).table
    if table is not None:
        return TaggedExamples(table, cfg.heldout)
    return SynthExamples(cfg.tasks, cfg.framing, cfg.seed)


class _Encoder:
    """Turns the sampler's draws into encoded batches, for `BatchStream`."""

    def __init__(self, step: HFStep) -> None:
        self.step = step

    def train_batches(self, draws: list[tuple[np.ndarray, np.ndarray]]) -> list[HFBatch]:
        s = self.step
        names = s.sampler.names
        return [
            encode(s.tokenizer, *s.data.rows(names, src, idx), s.cfg.max_length)
            for src, idx in draws
        ]


class HFStep:
    """The causal LM of `cfg.model`, fine-tuned on the mixture of `cfg` (tagged rows or tasks)."""

    def __init__(
        self, cfg: HFTrainConfig, device: torch.device, dist: Dist, table: pa.Table | None = None
    ) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist
        self.data = make_examples(cfg, table)
        self.sampler = build_sampler(
            cfg.mixture, self.data.sizes, seed=cfg.seed, batch_size=cfg.batch_size,
            total_steps=cfg.steps, rank=dist.rank, world_size=dist.world_size,
        )  # fmt: skip
        self.model, self.tokenizer = load_model(cfg.model, cfg.tokenizer)
        self.model.to(device)
        self.optimizer = make_optimizer(self.model, cfg.optim, fused=device.type == "cuda")
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.facts: dict[str, Any] = {
            "params": self.n_params,
            "model": cfg.model,
            "lr_peak": peak_lr(cfg.optim, self.n_params),
        }
        self.stream: Stream = BatchStream(self.sampler, _Encoder(self), cfg.steps)
        self.items = self.data.eval_items(cfg.eval_examples)
        self.tokens = 0  # trained (non-pad) tokens over all ranks: the FLOPs count
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def expect(self) -> dict[str, Any]:
        return {"config_hash": self.cfg.hash(), "params": self.n_params}

    def record(self) -> tuple[Any, dict[str, str]]:
        import transformers

        return self.cfg, {"transformers": transformers.__version__}

    def eval_steps(self) -> list[int]:
        return eval_steps(self.cfg.steps, self.cfg.eval_every)

    def train_step(self, net: torch.nn.Module, batch: HFBatch) -> torch.Tensor:
        ids, mask, labels = (t.to(self.device) for t in batch)
        self.tokens += int(batch[1].sum()) * self.dist.world_size  # ranks' slices are alike in size
        with self.autocast:
            logits = net(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
            loss, shown = self.dist.loss(logits, shift_labels(labels))
        update(self.model, self.optimizer, loss, self.cfg.optim.grad_clip)
        return shown

    def evaluate(self) -> dict[str, dict[str, float]]:
        c = self.cfg
        return evaluate_hf(
            self.model, self.tokenizer, self.items, self.device, c.max_new_tokens, c.max_length
        )

    def heldout_batches(self, n: int) -> Batches:
        out = {}
        for task, it in self.items.items():
            ids, _, labels = encode(
                self.tokenizer, it.prompts[:n], it.responses[:n], self.cfg.max_length
            )
            out[task] = (ids.to(self.device), shift_labels(labels).to(self.device))
        return out

    def train_batches(self, n: int, seed: int, rank: int = 0, world: int = 1) -> Batches:
        """As `TrainModule.train_batches`; the rows are the first `n` of each task's training
        rows (synthetic tasks: drawn with the run's seed, not `seed`)."""
        names, sizes = list(self.sampler.names), self.data.sizes
        out = {}
        for sid, name in enumerate(names):
            index = np.arange(n, dtype=np.int64)
            if sizes is not None:
                index %= max(1, sizes[name])
            index = index[rank::world]
            prompts, responses = self.data.rows(names, np.full(len(index), sid), index)
            ids, _, labels = encode(self.tokenizer, prompts, responses, self.cfg.max_length)
            out[name] = (ids.to(self.device), shift_labels(labels).to(self.device))
        return out

    def load_trained(self, run_dir: Path) -> torch.nn.Module:
        model, _ = load_model(run_dir / "model", self.cfg.tokenizer or str(run_dir / "model"))
        return model.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokens = int(state.get("tokens", 0))

    def finish(self, state: TrainState) -> None:
        state.facts["flops"] = 6.0 * self.n_params * self.tokens  # the usual 6·N per trained token
        if not state.dist.is_main:
            return
        out = state.run_dir / "model"
        self.model.save_pretrained(out)  # type: ignore[operator]
        self.tokenizer.save_pretrained(out)
        items = self.items
        doc = lmeval_results(
            state.last_eval,
            {t: len(it.prompts) for t, it in items.items()},
            model="hf",
            model_args=f"pretrained={self.cfg.model}",
            judge={t: it.scored_by for t, it in items.items()},
            config={
                "step": state.step,
                "config_hash": self.cfg.hash(),
                "random_seed": self.cfg.seed,
                "device": str(self.device),
                "batch_size": self.cfg.batch_size,
            },
        )
        state.facts["lm_eval"] = str(write_lmeval(state.run_dir, doc))
