"""Neuron allocation, linear probes and output entropy on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from raremix.model import GPT, GPTConfig
from raremix.probes import (
    answer_entropy,
    dead_fraction,
    neuron_attribution,
    neuron_share,
    probe,
    probe_accuracy,
    shift_labels,
    token_entropy,
)
from raremix.probes.neurons import owners


def test_owners_normalise_per_task_and_skip_dead() -> None:
    attr = {
        "loud": torch.tensor(
            [10.0, 10.0, 0.0, 50.0, 0.0]
        ),  # big loss: raw values dwarf the other task's
        "quiet": torch.tensor([0.0, 0.1, 0.2, 0.1, 0.0]),
    }
    active = torch.tensor([True, True, True, False, True])
    # normalised: loud [.14 .14 0 .71 0], quiet [0 .25 .5 .25 0]
    assert owners(attr, active).tolist() == [0, 1, 1, -1, -1]
    assert neuron_share(attr, active) == {"loud": 0.2, "quiet": 0.4}
    assert dead_fraction(active) == 0.2


class Routed(nn.Module):
    """Task 1 reads only hidden units 0–3, task 2 only 4–7: each task owns its half."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.emb = nn.Parameter(torch.randn(8, 8, generator=gen))
        self.act = nn.GELU()
        self.head = nn.Parameter(torch.randn(8, 8, generator=gen))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.act(self.emb[idx])  # (B, T, 8)
        keep = torch.where(
            idx[:, :1, None] == 1, torch.arange(8) < 4, torch.arange(8) >= 4
        )  # (B, 1, 8)
        return (h * keep) @ self.head  # (B, T, V)


def _batch(task: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(task)
    idx = torch.randint(2, 8, (16, 5), generator=gen)
    idx[:, 0] = task
    return idx, torch.randint(2, 8, (16, 5), generator=gen)


def test_attribution_finds_the_neurons_each_task_uses() -> None:
    model = Routed()
    attr, active = neuron_attribution(
        model, {"one": _batch(1), "two": _batch(2)}, modules=[model.act]
    )
    assert attr["one"].shape == (8,) and bool(active.all())
    assert (attr["one"][4:] == 0).all() and (attr["two"][:4] == 0).all()
    assert neuron_share(attr, active) == {"one": 0.5, "two": 0.5}


def test_linear_probe_reads_a_planted_feature_and_not_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 10, generator=gen)
    planted = x.clone()
    planted[:, 0] += 8.0 * y  # an ordinal feature: class 1 lies between 0 and 2 on one axis
    assert probe_accuracy(planted, y) == 1.0
    assert probe_accuracy(x, y) < 0.6  # chance is 1/3
    assert math.isnan(probe_accuracy(x[:3], y[:3]))


def test_entropy_of_uniform_and_confident_predictions() -> None:
    targets = torch.tensor([[-100, 1, 2]])
    assert token_entropy(torch.zeros(1, 3, 5), targets) == pytest.approx(math.log(5))
    confident = torch.full((1, 3, 5), -50.0)
    confident[..., 0] = 50.0
    assert token_entropy(confident, targets) == pytest.approx(0.0, abs=1e-6)


def test_probe_on_a_gpt_reports_every_named_metric() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, d_model=16, n_head=2, vocab_size=12, block_size=8))
    batches = {t: _batch(t) for t in (1, 2, 3)}
    named = {f"t{t}": (i, shift_labels(y)) for t, (i, y) in batches.items()}
    out = probe(model, named, rare=["t3"], lr=1e-3)
    assert set(out) == {
        "probe/grad_norm",
        "probe/common_grad_norm",
        "probe/grad_cos",
        "probe/interference",
        "probe/first_order",
        "probe/first_order_real",
        "probe/neuron_share",
        "probe/dead_neurons",
        "probe/entropy",
        "probe/probe_task_acc",
        "probe/probe_feature_acc",
    }
    assert set(out["probe/grad_cos"]) == {"t1|t2", "t1|t3", "t2|t3"}
    assert set(out["probe/interference"]) == {"t3"}
    assert sum(out["probe/neuron_share"].values()) + out["probe/dead_neurons"][""] == pytest.approx(
        1.0
    )
    assert out["probe/probe_task_acc"][""] == 1.0  # the task token is right there in the sequence
    assert out["probe/entropy"] == pytest.approx(answer_entropy(model, named))
    only = probe(model, named, probes=["entropy"])
    assert set(only) == {"probe/entropy"}
