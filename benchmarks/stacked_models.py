"""Stacked models: K small GPTs trained in one process as one vmapped step vs one at a time.

Issue #4 asked whether batching several small models into one (stacked weights) would
lift study throughput beyond one 1-thread process per core, and to measure before
building it. This trains K ladder GPTs with `torch.func` (`stack_module_state` + `vmap`
over `grad_and_value`, one AdamW over the stacked weights) and times one stacked step
against K ordinary steps of one model, on the same thread count. Prints the speed-up per
model; above 1 a stacked runner would be worth building.

    python benchmarks/stacked_models.py                 # 25k, K = 2 and 4, 1 thread
    python benchmarks/stacked_models.py --size 100k --threads 2
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from collections.abc import Callable

import torch
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from raremix.model import GPT, ladder_config


def _time(step: Callable[[], None], n: int) -> float:
    """Seconds per call of `step`, after a warm-up."""
    for _ in range(max(3, n // 10)):
        step()
    t = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t) / n


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def stacked_step(net: GPT, k: int, vocab: int, shape: tuple[int, int]) -> Callable[[], None]:
    """One AdamW step of `k` copies of `net`'s architecture, stacked and vmapped."""
    params, buffers = stack_module_state([GPT(net.cfg) for _ in range(k)])
    skeleton = copy.deepcopy(net).to("meta")

    def loss_of(p: dict, b: dict, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return _loss(functional_call(skeleton, (p, b), (xx,)), yy)

    grad_fn = vmap(grad_and_value(loss_of))
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3)
    xs, ys = torch.randint(0, vocab, (k, *shape)), torch.randint(0, vocab, (k, *shape))

    def step() -> None:
        grads, _ = grad_fn(params, buffers, xs, ys)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--size", default="25k", help="ladder size")
    add("--threads", type=int, default=1)
    add("--batch", type=int, default=64)
    add("--seq", type=int, default=14, help="tokens per example (the lab's ~14)")
    add("--vocab", type=int, default=48, help="vocabulary size (the lab's is ~48)")
    add("--stack", type=int, action="append", help="K models per stacked step (default 2, 4)")
    add("--steps", type=int, default=200, help="timed steps per measurement")
    add("--repeats", type=int, default=3, help="interleaved measurements; the fastest counts")
    add("--quick", action="store_true", help="20 timed steps, 1 repeat")
    args = parser.parse_args()
    steps, repeats = (20, 1) if args.quick else (args.steps, args.repeats)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message=".*batching rule.*")  # the fallback is the point
    cfg = ladder_config(args.size, vocab_size=args.vocab, block_size=32)
    shape = (args.batch, args.seq)

    net = GPT(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randint(0, args.vocab, shape), torch.randint(0, args.vocab, shape)

    def one_step() -> None:
        opt.zero_grad(set_to_none=True)
        _loss(net(x), y).backward()
        opt.step()

    ks = args.stack or [2, 4]
    paths = {1: one_step} | {k: stacked_step(net, k, args.vocab, shape) for k in ks}
    times: dict[int, list[float]] = {k: [] for k in paths}
    for _ in range(repeats):  # interleaved, so a busy spell hits every path alike
        for k, step in paths.items():
            times[k].append(_time(step, steps))
    best = {k: min(t) for k, t in times.items()}
    print(f"{args.size} GPT ({net.num_params():,} params), batch {shape}, {args.threads} thread(s)")
    print(f"one model a step: {best[1] * 1e3:.2f} ms (fastest of {repeats})")
    for k in ks:
        print(
            f"K={k} stacked: {best[k] * 1e3:.2f} ms a step, {best[k] / k * 1e3:.2f} ms per model; "
            f"speed-up per model vs one at a time: {best[1] * k / best[k]:.2f}x"
        )


if __name__ == "__main__":
    main()
