"""Stacked models: K small GPTs trained in one process as one step, against K solo steps.

Issues #4 and #16 asked whether training several seeds of one config in one process
(stacked weights) would lift study throughput past one 1-thread process per core, with
a target of ≥ 2× runs per CPU-minute. This times one training step (forward, backward,
per-member gradient clipping, AdamW) of K ladder GPTs two ways against K steps of one
solo GPT, on the same thread count and lab.yaml's batch shape:

- **vmap**: `torch.func` (`stack_module_state` + `vmap` over `grad_and_value`) with one
  AdamW over the stacked weights;
- **ensemble**: `_stacked_gpt.StackedGPT`, every weight with a leading dimension K and
  batched matmuls (K solo GPTs stacked, so each member is its solo run).

It also times the data pipeline a run pays per step and per member (`BatchStream.next`
of a real lab.yaml run, built as `raremix train` builds it). Stacking shares the step
only: data, evaluation and process start-up stay per member, so a run's speed-up is at
most (solo step + data) / (stacked step per model + data), below the step's own.

    python benchmarks/stacked_models.py                  # 12k, 25k, 100k; K = 4 and 8; 1 thread
    python benchmarks/stacked_models.py --sizes 25k --stack 2 --stack 16 --threads 2
    python benchmarks/stacked_models.py --quick          # 12k, K = 2, a few steps (smoke test)
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from _stacked_gpt import StackedGPT, clip_per_member
from raremix.config import load_config
from raremix.distributed import Dist
from raremix.model import GPT, GPTConfig
from raremix.steps.gpt import gpt_step

LAB = Path(__file__).resolve().parent.parent / "src" / "raremix" / "configs" / "lab.yaml"
TARGET = 2.0  # issue #16: ≥ 2× runs per CPU-minute
Step = Callable[[], None]


def _time(step: Step, n: int) -> float:
    """Seconds per call of `step`, after a warm-up."""
    for _ in range(max(3, n // 10)):
        step()
    t = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t) / n


def member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K,) each member's mean cross-entropy; logits (K, B, T, V), y (K, B, T). Their sum
    backpropagates each member's solo gradient."""
    nll = F.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="none")  # (K·B·T,)
    return nll.view(y.shape[0], -1).mean(1)


def solo_step(net: GPT, x: torch.Tensor, y: torch.Tensor, clip: float) -> Step:
    """One step of one GPT, as the loop's `raremix.optim.update` takes it."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = net(x)  # (B, T, V)
        F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()

    return step


def vmap_step(cfg: GPTConfig, xs: torch.Tensor, ys: torch.Tensor, clip: float) -> Step:
    """One step of K GPTs stacked by `torch.func` and vmapped; xs, ys (K, B, T)."""
    k = xs.shape[0]
    params, buffers = stack_module_state([GPT(cfg) for _ in range(k)])
    skeleton = copy.deepcopy(GPT(cfg)).to("meta")

    def loss_of(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(skeleton, (p, b), (x,))  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    grad_fn = vmap(grad_and_value(loss_of))
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3)

    def step() -> None:
        # outside no_grad, autograd would also record grad_fn's graph onto the (leaf)
        # weights, and p.grad -> graph -> p is a cycle that leaks each step's graph
        with torch.no_grad():
            grads, _ = grad_fn(params, buffers, xs, ys)  # each (K, *solo shape)
        clip_per_member(grads.values(), clip)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()

    return step


def ensemble_step(net: StackedGPT, xs: torch.Tensor, ys: torch.Tensor, clip: float) -> Step:
    """One step of the explicit ensemble `net`; xs, ys (K, B, T)."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        member_losses(net(xs), ys).sum().backward()
        clip_per_member((p.grad for p in net.parameters() if p.grad is not None), clip)
        opt.step()

    return step


def data_ms(size: str, steps: int) -> tuple[float, int, GPTConfig]:
    """ms per `BatchStream.next` of a fresh lab.yaml run at `size`, the median batch
    length, and the run's GPTConfig."""
    cfg = load_config(LAB, [f"model.size={size}", "device=cpu"])
    run = gpt_step(cfg, torch.device("cpu"), Dist())
    t, lengths = time.perf_counter(), []
    for i in range(steps):
        batch = run.stream.next(i)
        assert batch is not None, "lab.yaml's mixture does not run out"
        lengths.append(batch.idx.shape[1])
    return (time.perf_counter() - t) / steps * 1e3, int(statistics.median(lengths)), run.model_cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sizes", default="12k,25k,100k", help="ladder sizes, comma-separated")
    add("--stack", type=int, action="append", help="K models per stacked step (default 4, 8)")
    add("--threads", type=int, default=1)
    add("--batch", type=int, default=64, help="examples per member's batch (lab.yaml's 64)")
    add("--steps", type=int, default=40, help="timed steps per measurement")
    add("--repeats", type=int, default=3, help="interleaved measurements; the fastest counts")
    add("--data-steps", type=int, default=320, help="BatchStream.next calls timed per size")
    add("--quick", action="store_true", help="12k, K = 2, 5 steps, 1 repeat")
    args = parser.parse_args()
    sizes, ks = args.sizes.split(","), args.stack or [4, 8]
    steps, repeats, data_steps = args.steps, args.repeats, args.data_steps
    if args.quick:
        sizes, ks, steps, repeats, data_steps = ["12k"], [2], 5, 1, 32
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*batching rule.*")  # the fallback is the point
    print(
        f"{args.threads} thread(s), batch {args.batch} per member, fastest of {repeats} "
        f"interleaved measurements of {steps} steps; load average {os.getloadavg()[0]:.1f}"
    )
    best_seen = 0.0
    for size in sizes:
        torch.manual_seed(0)
        data, seq, cfg = data_ms(size, data_steps)
        clip = 1.0  # lab.yaml's optim.grad_clip
        x = torch.randint(0, cfg.vocab_size, (max(ks), args.batch, seq))  # (K, B, T)
        y = torch.randint(0, cfg.vocab_size, x.shape)
        paths: dict[str, Step] = {"solo": solo_step(GPT(cfg), x[0], y[0], clip)}
        for k in ks:
            paths[f"vmap{k}"] = vmap_step(cfg, x[:k], y[:k], clip)
            ensemble = StackedGPT.stack([GPT(cfg) for _ in range(k)])
            paths[f"ensemble{k}"] = ensemble_step(ensemble, x[:k], y[:k], clip)
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(repeats):  # interleaved, so a busy spell hits every path alike
            for name, step in paths.items():
                times[name].append(_time(step, steps) * 1e3)
        ms = {name: min(t) for name, t in times.items()}
        print(
            f"\n{size} GPT ({GPT(cfg).num_params():,} params), lab.yaml batches "
            f"({args.batch} × {seq} tokens, vocab {cfg.vocab_size})"
        )
        print(
            f"  solo step {ms['solo']:.2f} ms; data pipeline (BatchStream.next) "
            f"{data:.2f} ms a step per member"
        )
        for k in ks:
            per = {p: ms[f"{p}{k}"] / k for p in ("vmap", "ensemble")}
            up = {p: ms["solo"] / t for p, t in per.items()}
            bound = (ms["solo"] + data) / (min(per.values()) + data)
            best_seen = max(best_seen, *up.values())
            print(
                f"  K={k}: ms per model: vmap {per['vmap']:.2f}, ensemble {per['ensemble']:.2f}; "
                f"speed-up per model: vmap {up['vmap']:.2f}x, ensemble {up['ensemble']:.2f}x; "
                f"a run's, with data per member: <= {bound:.2f}x"
            )
    verdict = "met" if best_seen >= TARGET else "NOT met"
    print(
        f"\nbest step speed-up per model: {best_seen:.2f}x (target >= {TARGET:g}x runs per "
        f"CPU-minute: {verdict}; a run's ratio is at most its step's, since data loading, "
        f"evaluation and process start-up stay per member); "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
