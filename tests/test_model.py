import pytest
import torch

from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.model import (
    GPT,
    LADDER,
    GPTConfig,
    count_params,
    flops_per_token,
    ladder_config,
    width_for_budget,
)


@pytest.mark.parametrize("size", list(LADDER)[:9])
def test_param_count_is_exact(size: str) -> None:
    cfg = ladder_config(size, vocab_size=50, block_size=40)
    assert GPT(cfg).num_params() == count_params(cfg)


def test_ladder_spans_64x_on_cpu_rungs() -> None:
    counts = [
        count_params(ladder_config(s, 50, 40))
        for s in ("12k", "25k", "50k", "100k", "200k", "400k", "1m", "2m", "4m")
    ]
    assert counts == sorted(counts)
    assert counts[-1] / counts[0] >= 64
    # each named rung is within a factor 1.6 of its name
    for name, n in zip(
        ("12k", "25k", "50k", "100k", "200k", "400k", "1m", "2m", "4m"), counts, strict=True
    ):
        nominal = float(name[:-1]) * (1e3 if name.endswith("k") else 1e6)
        assert 0.6 < n / nominal < 1.6, (name, n)


def test_forward_shapes_and_causality() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, d_model=16, n_head=2, vocab_size=11, block_size=8))
    idx = torch.randint(0, 11, (3, 8))
    logits = model(idx)
    assert logits.shape == (3, 8, 11)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    # positions before the change cannot see it
    assert torch.allclose(model(changed)[:, :5], logits[:, :5], atol=1e-6)
    assert not torch.allclose(model(changed)[:, 5:], logits[:, 5:])


def test_too_long_sequence_is_a_clear_error() -> None:
    model = GPT(GPTConfig(n_layer=1, d_model=8, n_head=2, vocab_size=5, block_size=4))
    with pytest.raises(RaremixError, match="block_size"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_width_for_budget_equal_size_shapes() -> None:
    deep = width_for_budget(200_000, n_layer=8, vocab_size=50, block_size=40)
    wide = width_for_budget(200_000, n_layer=2, vocab_size=50, block_size=40)
    assert deep.d_model < wide.d_model
    for cfg in (deep, wide):
        n = count_params(cfg)
        assert 0.85 * 200_000 < n <= 200_000
        assert cfg.d_model % cfg.n_head == 0


def test_bad_shapes_are_one_line_errors() -> None:
    with pytest.raises(RaremixError, match="n_head"):
        load(GPTConfig, {"d_model": 30, "n_head": 4})
    with pytest.raises(RaremixError, match="d_model"):
        load(GPTConfig, {"d_model": -3})
    with pytest.raises(RaremixError, match="model size 'huge'"):
        ladder_config("huge", 10, 10)
    with pytest.raises(RaremixError, match="fits"):
        width_for_budget(100, n_layer=4, vocab_size=50, block_size=40)


def test_flops_grow_with_size() -> None:
    small, big = ladder_config("25k", 50, 40), ladder_config("1m", 50, 40)
    assert flops_per_token(big, 20) > 20 * flops_per_token(small, 20)
    assert flops_per_token(small, 20) >= 6 * count_params(small, embeddings=False)
