"""Training throughput: the raremix trainer against a bare PyTorch loop, and the size ladder.

    .venv/bin/python benchmarks/train_throughput.py             # lab.yaml (25k, batch 64), 3 reps
    .venv/bin/python benchmarks/train_throughput.py --quick     # seconds-long smoke run
    .venv/bin/python benchmarks/train_throughput.py --all       # the ladder up to 85m (slow on CPU)

Both sides train the same GPT (same init) with the same AdamW, learning-rate schedule,
gradient clipping and token batches, in this process, interleaved:

  * raremix: the real `raremix.trainer.train`, which makes its batches as it goes (that
    cost is counted) and runs at lab.yaml's cadence: evaluation every 200 steps, a
    checkpoint every 500. A callback timestamps every step.
  * bare: a hand-written PyTorch loop over the same batches, pre-generated with raremix's
    own data pipeline (sampler → tasks → tokenizer) outside the timed region. The same
    callback runs it, `--chunk` steps at a time, after every `--chunk` trainer steps and
    over those steps' batches (A, B, A, B … every chunk); its time is left out of the
    trainer's, and both loops see the machine's load of the same moment.

The *training steps only* ratio is the median over chunks of (bare seconds / raremix
seconds) for the same batches, over chunks with no evaluation or checkpoint; the *default
cadence* ratio is whole windows of lcm(200, 500) = 1000 steps, which hold exactly the
cadence's evaluations and checkpoints (not with --quick). Target ≥ 0.9 for both.
Tokens/s count the non-pad tokens of each batch (prefix, input, separator, answer, end);
both loops see the identical batch stream, so the ratios are the same counted as B×T.
The two loops' losses are compared at every step: they must be identical.

The Hugging Face family (`raremix hf-train`'s loop, `raremix.hf.train_hf`) is measured the
same way, in the same run: a tiny offline GPT-2 (`raremix.hf.tiny`) on tagged rows,
training steps only, against a bare loop over the same model weights, the batches the
trainer tokenized (taken from the loop as it goes) and AdamW: forward, response-token
loss, backward, clip, step. Ratio: raremix steps/s ÷ bare steps/s, target ≥ 0.9. Its
losses must agree to float rounding (a mean against the trainer's sum ÷ count).
"""

from __future__ import annotations

import argparse
import os

# Thread limits must be set before PyTorch loads: parse them first.
_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--threads", type=int, default=1)
_THREADS = _early.parse_known_args()[0].threads
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(_THREADS)

import math  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from raremix.callbacks import Callback  # noqa: E402
from raremix.config import OptimConfig, TrainConfig, load_config  # noqa: E402
from raremix.data import TaskData  # noqa: E402
from raremix.mixture import build_sampler  # noqa: E402
from raremix.model import GPT, LADDER, GPTConfig, count_params  # noqa: E402
from raremix.schedules import lr_at as schedule_lr  # noqa: E402
from raremix.tokens import TokenBatch  # noqa: E402
from raremix.trainer import TrainState, lr_at, train  # noqa: E402

if TYPE_CHECKING:
    from raremix.hf.config import HFTrainConfig
    from raremix.hf.encode import Encoded

TARGET = 0.9
LAB_YAML = Path(str(resources.files("raremix"))) / "configs" / "lab.yaml"
CPU_RUNGS = ("12k", "25k", "50k", "100k", "200k", "400k", "1m", "2m", "4m")
QUICK_RUNGS = ("12k",)


def lab_config(size: str, batch: int, steps: int, threads: int, cadence: bool) -> TrainConfig:
    """lab.yaml at `size` and `batch`; with `cadence=False`, evaluation and checkpoints only at the end."""
    over = [f"model.size={size}", f"batch_size={batch}", f"steps={steps}"]
    over += [f"threads={threads}", "device=cpu"]
    if not cadence:
        over += [f"eval_every={steps}", f"checkpoint_every={steps}"]
    return load_config(LAB_YAML, over)


def make_batches(cfg: TrainConfig) -> tuple[list[TokenBatch], GPTConfig, float]:
    """The run's whole batch stream, exactly as `train` draws it; also the model shape and s/batch."""
    sampler = build_sampler(
        cfg.mixture, seed=cfg.seed, batch_size=cfg.batch_size, total_steps=cfg.steps
    )
    data = TaskData(cfg, list(sampler.names))
    t0 = time.perf_counter()
    batches = [data.train_batch(*sampler.next_batch()) for _ in range(cfg.steps)]
    per_batch = (time.perf_counter() - t0) / cfg.steps
    return batches, cfg.model.build(data.tokenizer.size, data.block_size), per_batch


def adamw(model: torch.nn.Module, o: OptimConfig) -> torch.optim.AdamW:
    """AdamW by hand: weight decay on matrices but embeddings, as the trainer's."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and not name.startswith(("tok", "pos")) else rest).append(p)
    groups = [
        {"params": decay, "weight_decay": o.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2))


class BareLoop:
    """The training loop as one would write it by hand, over pre-made batches."""

    def __init__(self, cfg: TrainConfig, model_cfg: GPTConfig, batches: list[TokenBatch]) -> None:
        self.cfg, self.batches = cfg, batches
        torch.manual_seed(cfg.seed)  # the trainer's initialisation
        self.model = GPT(model_cfg)
        self.optimizer = adamw(self.model, cfg.optim)
        self.losses: list[torch.Tensor] = []

    def run(self, start: int, stop: int) -> float:
        """Steps start+1 … stop (batches[start:stop]); returns their seconds."""
        o, model, optimizer = self.cfg.optim, self.model, self.optimizer
        t0 = time.perf_counter()
        for step in range(start, stop):
            batch = self.batches[step]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, self.cfg.steps, o)
            logits = model(batch.idx)  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=-100)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            optimizer.step()
            self.losses.append(loss.detach())
        return time.perf_counter() - t0


class HFBareLoop:
    """A Hugging Face causal LM's training loop by hand, over the batches the trainer drew.

    `batches` fills as the trainer steps (`Alongside` appends each step's); the loss is
    the mean cross-entropy over response tokens (labels shifted by one, -100 elsewhere)."""

    def __init__(self, cfg: HFTrainConfig, n_params: int) -> None:
        from transformers import AutoModelForCausalLM

        self.cfg, self.n_params = cfg, n_params
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model)  # the trainer's weights
        self.model.train()
        self.optimizer = adamw(self.model, cfg.optim)
        self.batches: list[Encoded] = []
        self.losses: list[torch.Tensor] = []

    def run(self, start: int, stop: int) -> float:
        """Steps start+1 … stop (batches[start:stop]); returns their seconds."""
        o, model, optimizer = self.cfg.optim, self.model, self.optimizer
        t0 = time.perf_counter()
        for step in range(start, stop):
            batch = self.batches[step]
            for group in optimizer.param_groups:
                group["lr"] = schedule_lr(step, self.cfg.steps, o, self.n_params)
            logits = model(input_ids=batch.ids, attention_mask=batch.mask).logits  # (B, T, V)
            targets = torch.full_like(batch.labels, -100)
            targets[:, :-1] = batch.labels[:, 1:]  # position t predicts token t + 1
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            optimizer.step()
            self.losses.append(loss.detach())
        return time.perf_counter() - t0


class Alongside(Callback):
    """Timestamps the trainer's steps; after every `chunk` of them, runs the bare loop on the same batches."""

    def __init__(self, bare: BareLoop | HFBareLoop, chunk: int) -> None:
        self.bare, self.chunk = bare, chunk
        self.ends: list[float] = []  # ends[k - 1]: trainer step k done
        self.resumes: list[float] = []  # resumes[k - 1]: back to the trainer after step k
        self.losses: list[float] = []
        self.bare_s: dict[int, float] = {}  # step s → bare seconds for steps s-chunk+1 … s
        self.eval_s: dict[int, float] = {}  # step → seconds its evaluation took

    def on_step_end(self, state: TrainState) -> None:
        self.ends.append(time.perf_counter())
        self.losses.append(state.loss)
        if isinstance(self.bare, HFBareLoop):  # the batch the trainer tokenized, for the bare loop
            self.bare.batches.append(state.batch)
        if state.step % self.chunk == 0:
            self.bare_s[state.step] = self.bare.run(state.step - self.chunk, state.step)
        self.resumes.append(time.perf_counter())

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        if state.step > 0:
            self.eval_s[state.step] = time.perf_counter() - self.resumes[-1]


@dataclass
class Rep:
    """One `train` run with the bare loop alongside, over the window of steps after warm-up."""

    bare: float  # tokens/s
    steps_only: float  # tokens/s over the step intervals with no evaluation or checkpoint
    cadence: float  # tokens/s over the whole window
    chunk_ratios: list[float]  # bare s / raremix s per chunk, chunks with no eval or checkpoint
    data_ms: float  # data pipeline, per batch
    bare_ms: float  # per step
    step_ms: float  # raremix, median step interval with no evaluation or checkpoint
    cadence_ms: float  # raremix, mean step interval over the whole window
    eval_ms: float  # per evaluation in the window (nan when none)
    ckpt_ms: float  # per checkpoint in the window (nan when none)
    outside_s: float  # train() time outside the window: setup, warm-up, first and last eval, …
    max_loss_diff: float


def measure(cfg: TrainConfig, warmup: int, chunk: int) -> Rep:
    """One run of `cfg.steps` steps; times steps warmup+1 … cfg.steps (warmup, steps: multiples of chunk)."""
    assert warmup % chunk == 0 and cfg.steps % chunk == 0, "chunks must tile the window"
    batches, model_cfg, per_batch = make_batches(cfg)
    tokens = [int(b.lengths.sum()) for b in batches]  # tokens[k - 1]: step k's batch
    clock = Alongside(BareLoop(cfg, model_cfg, batches), chunk)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, tmp, [clock], resume=False)
        wall = time.perf_counter() - t0

    window = range(warmup + 1, cfg.steps + 1)
    gap = {k: clock.ends[k - 1] - clock.resumes[k - 2] for k in window}  # step k + what preceded it

    def quiet(k: int) -> bool:  # no evaluation or checkpoint ran between steps k-1 and k
        return bool((k - 1) % cfg.eval_every and (k - 1) % cfg.checkpoint_every)

    plain, busy = [k for k in window if quiet(k)], [k for k in window if not quiet(k)]
    chunk_ratios = [
        clock.bare_s[s] / sum(gap[k] for k in range(s - chunk + 1, s + 1))
        for s in range(warmup + chunk, cfg.steps + 1, chunk)
        if all(quiet(k) for k in range(s - chunk + 1, s + 1))
    ]
    step_ms = 1e3 * statistics.median(gap[k] for k in plain)
    evals = [sec for k, sec in clock.eval_s.items() if k + 1 in window]
    n_ckpt = sum((k - 1) % cfg.checkpoint_every == 0 for k in busy)
    ckpt_s = sum(gap[k] for k in busy) - sum(evals) - len(busy) * step_ms / 1e3
    span = sum(gap.values())
    bare_s = sum(sec for s, sec in clock.bare_s.items() if s > warmup)
    window_tokens = sum(tokens[k - 1] for k in window)
    bare_losses = [x.item() for x in clock.bare.losses]
    return Rep(
        bare=window_tokens / bare_s,
        steps_only=sum(tokens[k - 1] for k in plain) / sum(gap[k] for k in plain),
        cadence=window_tokens / span,
        chunk_ratios=chunk_ratios,
        data_ms=1e3 * per_batch,
        bare_ms=1e3 * bare_s / len(window),
        step_ms=step_ms,
        cadence_ms=1e3 * span / len(window),
        eval_ms=1e3 * statistics.mean(evals) if evals else math.nan,
        ckpt_ms=1e3 * ckpt_s / n_ckpt if n_ckpt else math.nan,
        outside_s=wall - span - sum(clock.bare_s.values()),
        max_loss_diff=max(abs(a - b) for a, b in zip(clock.losses, bare_losses, strict=True)),
    )


def med(reps: list[Rep], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in reps)


def steps_ratio(reps: list[Rep]) -> float:
    """Median over every quiet chunk of every rep of bare s / raremix s (same batches)."""
    return statistics.median(x for r in reps for x in r.chunk_ratios)


def cadence_ratio(reps: list[Rep]) -> float:
    """Median over reps of the whole-window rate ratio."""
    return statistics.median(r.cadence / r.bare for r in reps)


def verdict(r: float) -> str:
    return f"{r:.3f} (target ≥ {TARGET}: {'met' if r >= TARGET else 'NOT met'})"


def table(*columns: str) -> Table:
    """A Markdown table (pastes into the README as it prints); first column left-aligned."""
    t = Table(box=box.MARKDOWN)
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right")
    return t


def headline(console: Console, args: argparse.Namespace) -> None:
    """raremix `train` with the bare loop alongside, at one size."""
    lab = lab_config(args.size, args.batch, 1, args.threads, cadence=True)
    period = math.lcm(lab.eval_every, lab.checkpoint_every)
    chunk = args.chunk or (10 if args.quick else 20)
    warmup, n = chunk, (4 * chunk if args.quick else args.window or period)
    n = chunk * math.ceil(n / chunk)
    cfg = lab_config(args.size, args.batch, warmup + n, args.threads, cadence=True)
    n_reps = args.reps or (1 if args.quick else 3)
    console.print(
        f"[bold]raremix trainer vs bare PyTorch[/]: lab.yaml, {args.size}, batch {args.batch}, "
        f"{args.threads} thread(s); {n_reps} run(s) timing steps {warmup + 1}–{warmup + n}, "
        f"interleaved every {chunk} steps; eval every {cfg.eval_every}, checkpoint every "
        f"{cfg.checkpoint_every}"
    )
    with_cadence = n % period == 0  # the window holds whole eval/checkpoint periods
    reps: list[Rep] = []
    for i in range(n_reps):
        r = measure(cfg, warmup, chunk)
        reps.append(r)
        line = f"  run {i + 1}: tokens/s bare {r.bare:,.0f}, raremix {r.steps_only:,.0f} steps only"
        line += f" (ratio {statistics.median(r.chunk_ratios):.3f}, median of {len(r.chunk_ratios)} chunks)"
        if with_cadence:
            line += f", {r.cadence:,.0f} with cadence (ratio {r.cadence / r.bare:.3f})"
        console.print(line, highlight=False)
    t = table("loop", "tokens/s (median)", "min–max", "ms/step", "ratio to bare")
    rows = [("bare PyTorch loop", "bare", "bare_ms", "1")]
    rows.append(
        (
            "raremix train(): training steps only",
            "steps_only",
            "step_ms",
            f"{steps_ratio(reps):.3f}",
        )
    )
    if with_cadence:
        name = (
            f"raremix train(): eval every {cfg.eval_every}, checkpoint every {cfg.checkpoint_every}"
        )
        rows.append((name, "cadence", "cadence_ms", f"{cadence_ratio(reps):.3f}"))
    for name, attr, ms, ratio in rows:
        vals = [getattr(r, attr) for r in reps]
        t.add_row(
            name,
            f"{statistics.median(vals):,.0f}",
            f"{min(vals):,.0f}–{max(vals):,.0f}",
            f"{med(reps, ms):.2f}",
            ratio,
        )
    console.print(t)
    console.print(f"ratio raremix/bare, training steps only: {verdict(steps_ratio(reps))}")
    cadence = verdict(cadence_ratio(reps)) if with_cadence else "not measured (window < cadence)"
    console.print(f"ratio raremix/bare, default cadence: {cadence}")
    worst = max(r.max_loss_diff for r in reps)
    same = "identical" if worst == 0 else f"DIFFERENT (max |diff| {worst:.3g})"
    console.print(f"losses, raremix vs bare, every step: {same}")

    t = table("where the trainer's time goes (medians)", "ms", "ms per step")
    for name, attr, every in [
        ("bare step (forward, backward, clip, AdamW)", "bare_ms", 1),
        ("raremix step, without evaluation or checkpoint", "step_ms", 1),
        ("  of which: data pipeline (sampler, tasks, tokenizer)", "data_ms", 1),
        (
            f"evaluation ({len(cfg.tasks)} tasks × ≤{cfg.eval_examples} examples), per call",
            "eval_ms",
            cfg.eval_every,
        ),
        ("checkpoint, per call", "ckpt_ms", cfg.checkpoint_every),
    ]:
        if with_cadence or every == 1:
            t.add_row(name, f"{med(reps, attr):.2f}", f"{med(reps, attr) / every:.2f}")
    t.add_row(
        f"train() outside the window: setup, {warmup} warm-up steps, first and last eval, final checkpoint",
        f"{1e3 * med(reps, 'outside_s'):.0f}",
        "",
    )
    console.print(t)


def ladder(console: Console, args: argparse.Namespace) -> None:
    """Tokens/s of both loops at each rung, steps only, windows of about the same seconds."""
    sizes = list(LADDER) if args.all else list(QUICK_RUNGS if args.quick else CPU_RUNGS)
    seconds, n_chunks = (0.4, 4) if args.quick else (3.0, 10)
    console.print(
        f"\n[bold]ladder[/]: lab.yaml, batch {args.batch}, {args.threads} thread(s), training "
        f"steps only (evaluation and checkpoint at the end), ~{seconds:g} s windows of "
        f"{n_chunks} interleaved chunks"
    )
    t = table(
        "size",
        "params",
        "d_model × layers",
        "steps timed",
        "bare tokens/s",
        "raremix tokens/s",
        "ratio",
        "raremix steps/s",
        "losses",
    )
    for size in sizes:
        probe = lab_config(size, args.batch, 4, args.threads, cadence=False)
        batches, model_cfg, _ = make_batches(probe)
        bare = BareLoop(probe, model_cfg, batches)
        bare.run(0, 2)  # warm-up
        step_s = bare.run(2, 4) / 2
        chunk = max(1, round(seconds / n_chunks / step_s))
        warmup = chunk * math.ceil(3 / chunk)
        cfg = lab_config(size, args.batch, warmup + n_chunks * chunk, args.threads, cadence=False)
        r = measure(cfg, warmup, chunk)
        ratio = statistics.median(r.chunk_ratios)
        t.add_row(
            size,
            f"{count_params(model_cfg):,}",
            f"{model_cfg.d_model} × {model_cfg.n_layer}",
            str(n_chunks * chunk),
            f"{r.bare:,.0f}",
            f"{r.steps_only:,.0f}",
            f"{ratio:.3f}",
            f"{1e3 / r.step_ms:.1f}",
            "same" if r.max_loss_diff == 0 else f"Δ {r.max_loss_diff:.2g}",
        )
        console.print(f"  {size}: {n_chunks} × {chunk} steps, ratio {ratio:.3f}", highlight=False)
    console.print(t)


HF_CHARS = "abcdefghij\n"


def hf_rows(n: int = 400) -> pa.Table:
    """Tagged rows of two tasks, 3:1: answer "yes", or reverse the word."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), 6)) for _ in range(n)]
    tasks = ["const"] * (3 * n // 4) + ["rev"] * (n - 3 * n // 4)
    responses = [w[::-1] if t == "rev" else "yes" for w, t in zip(words, tasks, strict=True)]
    return pa.table({"task": tasks, "prompt": [w + "\n" for w in words], "response": responses})


def hf_family(console: Console, args: argparse.Namespace) -> None:
    """`raremix hf-train`'s loop against a bare PyTorch loop on a tiny offline GPT-2."""
    try:
        from transformers.utils import logging as hf_logging

        from raremix.hf import load_hf_config, train_hf
        from raremix.hf.tiny import char_tokenizer, tiny_model
    except ImportError:
        console.print("\n[bold]Hugging Face family[/]: skipped (pip install 'raremix[hf]')")
        return
    hf_logging.disable_progress_bar()
    chunk = args.chunk or (10 if args.quick else 20)
    warmup, n = chunk, chunk * (6 if args.quick else 15)
    steps = warmup + n
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model("gpt2", char_tokenizer(HF_CHARS + "ys"), Path(tmp) / "gpt2")
        over = {"eval_every": steps, "checkpoint_every": steps}  # steps only: both at the end
        cfg = load_hf_config(
            data={
                "model": str(model),
                "steps": steps,
                "batch_size": 16,
                "eval_examples": 8,
                "threads": args.threads,
                "device": "cpu",
                "optim": {"lr": 1e-2, "warmup_steps": 10},
                "data": {"path": "unused.jsonl"},  # the rows come as a table
                "heldout": 0.1,
                "mixture": {"sources": [{"name": "const"}, {"name": "rev"}]},
                **over,
            }
        )
        n_params = sum(p.numel() for p in HFBareLoop(cfg, 0).model.parameters())
        clock = Alongside(HFBareLoop(cfg, n_params), chunk)
        console.print(
            f"\n[bold]Hugging Face family[/]: raremix hf-train loop vs bare PyTorch, tiny GPT-2 "
            f"({n_params:,} params), batch {cfg.batch_size}, {args.threads} thread(s); "
            f"steps {warmup + 1}–{steps} timed, interleaved every {chunk} steps, no evaluation",
            highlight=False,
        )
        train_hf(cfg, Path(tmp) / "run", table=hf_rows(), callbacks=[clock], resume=False)
    gap = {k: clock.ends[k - 1] - clock.resumes[k - 2] for k in range(warmup + 1, steps + 1)}
    ratios = [
        clock.bare_s[s] / sum(gap[k] for k in range(s - chunk + 1, s + 1))
        for s in range(warmup + chunk, steps + 1, chunk)
    ]
    raremix_rate = len(gap) / sum(gap.values())
    bare_rate = len(gap) / sum(sec for s, sec in clock.bare_s.items() if s > warmup)
    console.print(f"  steps/s: bare {bare_rate:,.1f}, raremix {raremix_rate:,.1f}", highlight=False)
    ratio = statistics.median(ratios)
    console.print(
        f"ratio raremix/bare, Hugging Face, training steps only: {verdict(ratio)} "
        f"(median of {len(ratios)} chunks)"
    )
    bare_losses = [x.item() for x in clock.bare.losses]
    worst = max(abs(a - b) for a, b in zip(clock.losses, bare_losses, strict=True))
    same = "agree" if worst <= 1e-4 else "DIFFER"
    console.print(f"losses, raremix vs bare, every step: {same} (max |diff| {worst:.2g})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run (short window, 12k rung only)",
    )
    add("--threads", type=int, default=1, help="PyTorch CPU threads (default 1, as study runs use)")
    add("--size", default="25k", help="model size of the comparison (default: lab.yaml's)")
    add("--batch", type=int, default=64, help="batch size (default: lab.yaml's)")
    add("--reps", type=int, help="trainer runs to time (default 3; 1 with --quick)")
    add(
        "--window",
        type=int,
        help="timed steps per run (default: lcm of eval and checkpoint cadence)",
    )
    add("--chunk", type=int, help="steps per interleaved chunk (default 20; 10 with --quick)")
    add("--all", action="store_true", help="every ladder rung, the GPU ones (16m, 85m) too")
    add("--no-ladder", action="store_true", help="skip the per-size ladder")
    add("--no-hf", action="store_true", help="skip the Hugging Face family")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=160)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cores = len(os.sched_getaffinity(0))
    console.print(f"torch {torch.__version__}, {cores} cores, load average {load}", highlight=False)
    headline(console, args)
    if not args.no_ladder:
        ladder(console, args)
    if not args.no_hf:
        hf_family(console, args)


if __name__ == "__main__":
    main()
