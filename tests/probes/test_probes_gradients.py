"""Interference on constructed cases with known answers, and the first-order prediction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from raremix.model import GPT, GPTConfig
from raremix.probes import (
    common_gradient,
    cosine_matrix,
    first_order,
    interference,
    pairwise_cosines,
    probe,
    task_gradients,
)
from raremix.probes.gradients import trial_update


class TwoRoutes(nn.Module):
    """Task 1's tokens use only `a`, task 2's only `b`: their gradients live in orthogonal blocks."""

    def __init__(self, vocab: int = 8) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(vocab, vocab, generator=gen))
        self.b = nn.Parameter(torch.randn(vocab, vocab, generator=gen))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        route = (idx[:, :1] == 1)[..., None]  # (B, 1, 1) the first token names the task
        return torch.where(route, self.a[idx], self.b[idx])  # (B, T, V)


def batch(
    task: int, seed: int, n: int = 8, t: int = 6, vocab: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(3, vocab, (n, t), generator=gen)
    idx[:, 0] = task
    targets = torch.randint(3, vocab, (n, t), generator=gen)
    targets[:, :2] = -100
    return idx, targets


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(n_layer=2, d_model=16, n_head=2, vocab_size=12, block_size=8))


def test_identical_gradients_have_cosine_one() -> None:
    model = tiny_gpt()
    b = batch(1, seed=1, vocab=12)
    grads = task_gradients(model, {"x": b, "y": b})
    assert pairwise_cosines(grads)["x|y"] == pytest.approx(1.0, abs=1e-6)
    assert interference(grads, rare=["y"]) == {"y": pytest.approx(1.0, abs=1e-6)}


def test_orthogonal_blocks_have_cosine_zero() -> None:
    model = TwoRoutes()
    grads = task_gradients(model, {"one": batch(1, seed=1), "two": batch(2, seed=2)})
    names, cos = cosine_matrix(grads)
    assert names == ["one", "two"]
    assert cos[0, 1] == 0.0 and cos[0, 0] == pytest.approx(1.0)
    assert all(float(g.norm()) > 0 for g in grads.values())


def test_gradients_leave_grad_untouched() -> None:
    model = tiny_gpt()
    marker = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, m in zip(model.parameters(), marker, strict=True):
        p.grad = m
    task_gradients(model, {"x": batch(1, seed=1, vocab=12)})
    assert all(p.grad is m for p, m in zip(model.parameters(), marker, strict=True))


def test_trial_update_of_sgd_is_minus_lr_times_gradient() -> None:
    model = tiny_gpt()
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1)
    g = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in params]
    delta = trial_update(opt, params, g)
    torch.testing.assert_close(delta, -0.1 * g)
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_first_order_prediction_matches_real_change_for_small_steps(opt_name: str) -> None:
    model = tiny_gpt()
    batches = {"common": batch(1, seed=1, vocab=12), "rare": batch(2, seed=2, vocab=12)}
    # a trained-ish optimiser state, so Adam's update is not just the sign of the gradient
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(model.parameters(), lr=1e-3)
        if opt_name == "sgd"
        else torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    )
    for _ in range(5):
        opt.zero_grad()
        idx, targets = batches["common"]
        torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), targets.flatten()).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    fo = first_order(model, batches, rare=["rare"], optimizer=opt)["rare"]
    assert fo.predicted != 0
    assert fo.real == pytest.approx(fo.predicted, rel=0.1)
    # and plain SGD at a given lr
    sgd = first_order(model, batches, rare=["rare"], lr=1e-3)["rare"]
    assert sgd.real == pytest.approx(sgd.predicted, rel=0.1)


def test_identical_tasks_interfere_positively() -> None:
    """A step on a task's own data lowers its loss: predicted and real ΔL < 0."""
    model = tiny_gpt()
    b = batch(1, seed=1, vocab=12)
    fo = first_order(model, {"common": b, "rare": b}, rare=["rare"], lr=1e-3)["rare"]
    assert fo.predicted < 0 and fo.real < 0


def test_probe_restores_parameters_optimizer_state_grads_and_modes() -> None:
    model = tiny_gpt()
    batches = {"common": batch(1, seed=1, vocab=12), "rare": batch(2, seed=2, vocab=12)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    idx, targets = batches["common"]
    torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), targets.flatten()).backward()
    opt.step()
    model.train()
    model.blocks[0].eval()  # a mixed mode must survive too
    params = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad for p in model.parameters()]
    state = [v.clone() for s in opt.state.values() for v in s.values()]
    rng = torch.get_rng_state()
    out = probe(model, batches, rare=["rare"], optimizer=opt)
    assert {"probe/grad_cos", "probe/first_order", "probe/neuron_share", "probe/entropy"} <= set(
        out
    )
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params, strict=True))
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))
    now = [v for s in opt.state.values() for v in s.values()]
    assert len(now) == len(state) and all(
        torch.equal(a, b) for a, b in zip(now, state, strict=True)
    )
    assert model.training and not model.blocks[0].training and model.blocks[1].training
    assert torch.equal(torch.get_rng_state(), rng)


def test_common_gradient_is_weighted_as_training_weights_the_tasks() -> None:
    grads = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0]), "r": torch.ones(2)}
    weighted = common_gradient(grads, ["r"], {"a": 0.6, "b": 0.2, "r": 0.2})
    assert weighted is not None and torch.allclose(weighted, torch.tensor([0.75, 0.25]))
    unknown = common_gradient(grads, ["r"])  # weights not known: equal shares
    assert unknown is not None and torch.allclose(unknown, torch.tensor([0.5, 0.5]))
    assert interference(grads, ["r"], {"a": 1.0, "b": 0.0}) == {"r": pytest.approx(2**-0.5)}


def test_first_order_uses_the_training_weights() -> None:
    model = tiny_gpt()
    b1, b2, rare = (
        batch(1, seed=1, vocab=12),
        batch(2, seed=3, vocab=12),
        batch(2, seed=2, vocab=12),
    )
    both = {"c1": b1, "c2": b2, "rare": rare}
    only_c1 = first_order(model, {"c1": b1, "rare": rare}, rare=["rare"], lr=1e-3)["rare"]
    weighted = first_order(model, both, rare=["rare"], lr=1e-3, weights={"c1": 1.0, "c2": 0.0})
    assert weighted["rare"].predicted == pytest.approx(only_c1.predicted, rel=1e-5)
    equal = first_order(model, both, rare=["rare"], lr=1e-3)["rare"]
    assert equal.predicted != pytest.approx(only_c1.predicted, rel=1e-3)
