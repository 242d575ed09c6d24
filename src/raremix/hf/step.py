"""`HFStep`: any Hugging Face causal LM as a step module of the one loop.

A batch is an `Encoded` `(input_ids, attention_mask, labels)` of the rows the sampler
chose (`raremix.hf.encode`: loss on responses, every assistant turn of chat data,
truncation counted); evaluation is greedy generation judged per task
(`raremix.hf.evaluate`). The model is loaded in `cfg.dtype`, optionally with gradient
checkpointing and LoRA adapters (`peft`); a step accumulates gradients over
`cfg.grad_accum` micro-batches. After the last step rank 0 writes the trained model (or
its adapters) and tokenizer to `run_dir/model/` and the last evaluation to `run_dir/lm_eval/`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from raremix.data import BatchStream
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.hf.config import HFTrainConfig, LoraSpec
from raremix.hf.data import Examples, SynthExamples, TaggedExamples
from raremix.hf.encode import Cuts, Encoded, Encoder
from raremix.hf.evaluate import evaluate_hf
from raremix.hf.lmeval import METRIC, lmeval_results, lmeval_sample, write_lmeval
from raremix.loss import IGNORE, Batches, answer_loss
from raremix.mixture import build_sampler
from raremix.optim import make_optimizer
from raremix.probes import shift_labels
from raremix.schedules import eval_steps, peak_lr
from raremix.state import TrainState
from raremix.steps import Stream

HFBatch = Encoded
"""(input_ids, attention_mask, labels), each (B, T), right-padded, and truncation counts."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_model(
    path: str | Path, tokenizer: str | None, dtype: str = "float32"
) -> tuple[torch.nn.Module, Any]:
    """AutoModelForCausalLM (weights in `dtype`) and AutoTokenizer from local folders (or
    hub names); a folder of LoRA adapters loads onto its base model (transformers + peft)."""
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
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype])
    except OSError as err:
        raise RaremixError(
            f"cannot load model or tokenizer '{tokenizer or path}' ({str(err).splitlines()[0][:120]}): give a local folder written by save_pretrained"
        ) from None
    if tok.eos_token_id is None:
        raise RaremixError(
            f"tokenizer '{tokenizer or path}' has no eos token: set one (responses end with it)"
        )
    return model, tok


def add_lora(model: torch.nn.Module, spec: LoraSpec) -> torch.nn.Module:
    """`model` with LoRA adapters (`peft.get_peft_model`); the base weights are frozen."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:  # pragma: no cover - depends on the environment
        raise RaremixError(
            "lora: needs peft: pip install 'raremix[hf]' (or pip install peft)"
        ) from None
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules not found in the model
        names = sorted(
            {
                n.rsplit(".", 1)[-1]
                for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear)
            }
        )
        raise RaremixError(
            f"lora.target_modules: {str(err).splitlines()[0][:160]}: pick from the model's "
            f"linear layers ({', '.join(names[:12])}) or use all-linear"
        ) from None


def chat_template(cfg: HFTrainConfig, tok: Any) -> str | None:
    """The template chat rows are rendered with: `data.chat_template`'s tokenizer's, else
    the run's tokenizer's; None (plain `role: content` lines) when neither has one."""
    if cfg.data is None or cfg.data.messages is None:
        return None
    if cfg.data.chat_template is not None:
        from transformers import AutoTokenizer

        return getattr(AutoTokenizer.from_pretrained(cfg.data.chat_template), "chat_template", None)
    return getattr(tok, "chat_template", None)


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
        return [s.encoder.encode(s.data.rows(names, src, idx)) for src, idx in draws]


class HFStep:
    """The causal LM of `cfg.model`, fine-tuned on the mixture of `cfg` (tagged rows or tasks)."""

    def __init__(
        self, cfg: HFTrainConfig, device: torch.device, dist: Dist, table: pa.Table | None = None
    ) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist
        self.data = make_examples(cfg, table)
        self.sampler = build_sampler(
            cfg.mixture,
            self.data.sizes,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
            total_steps=cfg.steps,
            rank=dist.rank,
            world_size=dist.world_size,
        )
        model, self.tokenizer = load_model(cfg.model, cfg.tokenizer, cfg.dtype)
        if cfg.gradient_checkpointing:  # before peft wraps it: the model's own switch
            kwargs = {"use_reentrant": False}  # works with frozen inputs (LoRA)
            if hasattr(model, "activation_checkpointing_enable"):  # its transformers 5 name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)  # type: ignore[operator]
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)  # type: ignore[operator]
        self.model = model if cfg.lora is None else add_lora(model, cfg.lora)
        self.model.to(device)
        self.optimizer = make_optimizer(self.model, cfg.optim, fused=device.type == "cuda")
        self.n_params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.facts: dict[str, Any] = {
            "params": self.n_params,
            "trainable_params": trainable,
            "model": cfg.model,
            "lr_peak": peak_lr(cfg.optim, self.n_params),
        }
        self.encoder = Encoder(
            self.tokenizer,
            cfg.max_length,
            side=cfg.truncation_side,
            lost_response=cfg.lost_response,
            assistant_turns=cfg.assistant_turns,
            template=chat_template(cfg, self.tokenizer),
        )
        self.stream: Stream = BatchStream(self.sampler, _Encoder(self), cfg.steps)
        self.items = self.data.eval_items(cfg.eval_examples)
        eval_cuts = Cuts()
        for it in self.items.values():
            eval_cuts.add(self.encoder.encode(it.examples()).cuts)
        self.facts.update(eval_cuts.facts("eval_"))  # held-out sequences cut for the loss
        self.outputs: dict[str, list[str]] = {}  # the last evaluation's generated responses
        self.tokens = 0  # trained (non-pad) tokens over all ranks: the FLOPs count
        self.cuts = Cuts()  # truncation in the training batches taken so far (this rank)
        bf16 = cfg.autocast == "bfloat16" or (cfg.autocast == "auto" and device.type == "cuda")
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def expect(self) -> dict[str, Any]:
        return {"config_hash": self.cfg.hash(), "params": self.n_params}

    def record(self) -> tuple[Any, dict[str, str]]:
        import transformers

        return self.cfg, {"transformers": transformers.__version__}

    def eval_steps(self) -> list[int]:
        return eval_steps(self.cfg.steps, self.cfg.eval_every)

    def train_step(self, net: torch.nn.Module, batch: HFBatch) -> torch.Tensor:
        """One optimiser step on `batch`, its gradients accumulated over `grad_accum`
        micro-batches: each micro-batch's summed loss over the whole batch's trained-token
        count (all ranks), so the update is the one-pass update on the whole batch."""
        self.tokens += (
            int(batch.mask.sum()) * self.dist.world_size
        )  # ranks' slices are alike in size
        self.cuts.add(batch.cuts)
        targets = shift_labels(batch.labels)  # (B, T)
        count = (targets != IGNORE).sum().to(torch.float32)
        if self.dist.enabled:
            torch.distributed.all_reduce(count)
        count = count.clamp(min=1).to(self.device)
        n = min(self.cfg.grad_accum, len(targets))
        self.optimizer.zero_grad(set_to_none=True)
        shown = torch.zeros((), device=self.device)
        for k, (ids, mask, y) in enumerate(
            zip(*(t.tensor_split(n) for t in (batch.ids, batch.mask, targets)), strict=True)
        ):
            # DDP averages gradients at the last micro-batch's backward only
            quiet = k < n - 1 and hasattr(net, "no_sync")
            with net.no_sync() if quiet else contextlib.nullcontext(), self.autocast:  # type: ignore[operator]
                logits = net(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).logits  # (b, T, V)
                total = answer_loss(logits, y.to(self.device), reduction="sum")
            (total * self.dist.world_size / count).backward()
            shown += total.detach()
        if self.dist.enabled:
            torch.distributed.all_reduce(shown)
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        return shown / count

    def evaluate(self) -> dict[str, dict[str, float]]:
        c = self.cfg
        self.outputs = {}
        return evaluate_hf(
            self.model, self.encoder, self.items, self.device, c.max_new_tokens, self.outputs
        )

    def heldout_batches(self, n: int) -> Batches:
        out = {}
        for task, it in self.items.items():
            enc = self.encoder.encode(it.examples(n))
            out[task] = (enc.ids.to(self.device), shift_labels(enc.labels).to(self.device))
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
            enc = self.encoder.encode(self.data.rows(names, np.full(len(index), sid), index))
            out[name] = (enc.ids.to(self.device), shift_labels(enc.labels).to(self.device))
        return out

    def load_trained(self, run_dir: Path) -> torch.nn.Module:
        model, _ = load_model(
            run_dir / "model", self.cfg.tokenizer or str(run_dir / "model"), self.cfg.dtype
        )
        return model.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        c = self.cuts
        return {"tokens": self.tokens, "cuts": [c.truncated, c.response_cut, c.lost]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokens = int(state.get("tokens", 0))
        self.cuts = Cuts(*state.get("cuts", (0, 0, 0)))

    def finish(self, state: TrainState) -> None:
        state.facts["flops"] = 6.0 * self.n_params * self.tokens  # the usual 6·N per trained token
        cuts = torch.tensor([self.cuts.truncated, self.cuts.response_cut, self.cuts.lost])
        if self.dist.enabled:  # every rank cut its own share of the batches
            torch.distributed.all_reduce(cuts)
        state.facts.update(Cuts(*map(int, cuts.tolist())).facts())
        if not state.dist.is_main:
            return
        out = state.run_dir / "model"
        self.model.save_pretrained(out)  # type: ignore[operator]
        self.tokenizer.save_pretrained(out)
        items = self.items
        samples = self.samples()
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
            samples=samples,
        )
        state.facts["lm_eval"] = str(write_lmeval(state.run_dir, doc, samples))

    def samples(self) -> dict[str, list[dict[str, Any]]]:
        """The last evaluation's items as lm-eval's per-sample rows ({} for a task this
        process did not evaluate, e.g. a run resumed after its last evaluation)."""
        out = {}
        for task, outs in self.outputs.items():
            it = self.items[task]
            scores = it.judge(outs)
            metric = METRIC[it.scored_by]
            out[task] = [
                lmeval_sample(i, p, r, o, metric, float(ok))
                for i, (p, r, o, ok) in enumerate(
                    zip(it.prompts, it.responses, outs, scores, strict=True)
                )
            ]
        return out
