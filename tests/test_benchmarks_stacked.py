"""The stacked-models benchmark's explicit ensemble is K solo GPTs: same weights, same
outputs, and the same losses step for step under AdamW with per-member clipping."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from raremix.model import GPT, GPTConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _stacked_gpt import StackedGPT, clip_per_member
from stacked_models import member_losses

CFG = GPTConfig(n_layer=2, d_model=16, n_head=2, vocab_size=20, block_size=12)
SEEDS = (0, 1, 2)


def solo_gpts() -> list[GPT]:
    out = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        out.append(GPT(CFG))
    return out


def test_member_k_is_the_solo_gpt_of_its_seed() -> None:
    solo = solo_gpts()
    stacked = StackedGPT.stack(solo)
    idx = torch.randint(0, CFG.vocab_size, (len(SEEDS), 5, CFG.block_size))
    out = stacked(idx)  # (K, B, T, V)
    for k, gpt in enumerate(solo):
        torch.testing.assert_close(out[k], gpt(idx[k]), rtol=0, atol=1e-6)
        back = stacked.member(k, GPT(CFG))
        assert all(
            torch.equal(a, b) for a, b in zip(back.parameters(), gpt.parameters(), strict=True)
        )
    assert not torch.allclose(out[0], out[1])  # the members differ: their seeds do


def test_stacked_losses_equal_solo_runs_over_40_steps() -> None:
    steps, clip = 40, 1.0  # norms start ~1.2-1.7 and fall below 1
    gen = torch.Generator().manual_seed(7)
    xs = torch.randint(0, CFG.vocab_size, (steps, len(SEEDS), 8, 10), generator=gen)
    ys = (xs + 1) % CFG.vocab_size  # a learnable task (successor): random targets drift apart

    solo = solo_gpts()
    stacked = StackedGPT.stack(solo)
    solo_losses = torch.zeros(steps, len(SEEDS))
    for k, net in enumerate(solo):
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xs[i, k]).flatten(0, 1), ys[i, k].flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            solo_losses[i, k] = loss.detach()

    opt = torch.optim.AdamW(stacked.parameters(), lr=3e-3)
    stacked_losses = torch.zeros(steps, len(SEEDS))
    clipped = 0
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        losses = member_losses(stacked(xs[i]), ys[i])  # (K,)
        losses.sum().backward()
        norms = clip_per_member((p.grad for p in stacked.parameters() if p.grad is not None), clip)
        clipped += int((norms > clip).sum())
        opt.step()
        stacked_losses[i] = losses.detach()

    assert 0 < clipped < steps * len(SEEDS)  # clipping acted, per member, not on all of them
    torch.testing.assert_close(stacked_losses, solo_losses, rtol=0, atol=1e-4)
    assert solo_losses[-1].mean() < solo_losses[0].mean() - 0.1  # they trained
