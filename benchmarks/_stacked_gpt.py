"""K GPTs of one shape as one module, every weight with a leading ensemble dimension K.

Measurement code for `stacked_models.py` (issue #16: several seeds in one process), not
library code: the explicit-ensemble alternative to a `torch.func.vmap` over K models.
`StackedGPT.stack(models)` copies K solo `GPT`s into stacked tensors, so member k starts
from exactly the weights its solo run gets. The forward pass mirrors `raremix.model.GPT`
op for op with batched matmuls (`torch.baddbmm`) in place of `nn.Linear`, and the K × B
sequences flattened into SDPA's batch: members never mix, so each member's loss and
gradients are its solo run's (tests/test_benchmarks_stacked.py checks both).

Parameter names are GPT's (`blocks.0.attn.qkv.weight` …), each of shape (K, *solo shape).
Shapes beside the ops: K members, B batch, T time, C channels, H heads, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raremix.model import GPT, GPTConfig


class StackedLinear(nn.Module):
    """K `nn.Linear(d_in, d_out)`: weight (K, d_out, d_in), bias (K, d_out)."""

    def __init__(self, k: int, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(k, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, N, d_in) → (K, N, d_out)
        return torch.baddbmm(self.bias[:, None, :], x, self.weight.transpose(1, 2))


class StackedLayerNorm(nn.Module):
    """K `nn.LayerNorm(d)`, each with its own gain and bias."""

    def __init__(self, k: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, d))
        self.bias = nn.Parameter(torch.empty(k, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, N, C)
        x = F.layer_norm(x, x.shape[-1:], eps=1e-5)  # nn.LayerNorm's default eps
        return torch.addcmul(self.bias[:, None, :], x, self.weight[:, None, :])


class StackedEmbedding(nn.Module):
    """K `nn.Embedding(n, d)`: weight (K, n, d), looked up per member."""

    def __init__(self, k: int, n: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, n, d))


class StackedAttention(nn.Module):
    def __init__(self, k: int, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = StackedLinear(k, cfg.d_model, 3 * cfg.d_model)
        self.proj = StackedLinear(k, cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, B: int, T: int) -> torch.Tensor:
        K, _, C = x.shape  # x (K, B·T, C)
        H = self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 × (K, B·T, C)
        q, k, v = (t.reshape(K * B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        # one SDPA over the merged K·B batch: an explicit bmm + causal mask was 2× slower
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (K·B, H, T, C/H)
        return self.proj(y.transpose(1, 2).reshape(K, B * T, C))  # (K, B·T, C)


class StackedMLP(nn.Module):
    def __init__(self, k: int, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = StackedLinear(k, cfg.d_model, cfg.d_mlp)
        self.act = nn.GELU()
        self.out = StackedLinear(k, cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc(x)))  # (K, B·T, C)


class StackedBlock(nn.Module):
    def __init__(self, k: int, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = StackedLayerNorm(k, cfg.d_model)
        self.attn = StackedAttention(k, cfg)
        self.ln2 = StackedLayerNorm(k, cfg.d_model)
        self.mlp = StackedMLP(k, cfg)

    def forward(self, x: torch.Tensor, B: int, T: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), B, T)  # (K, B·T, C)
        return x + self.mlp(self.ln2(x))


class StackedGPT(nn.Module):
    """K GPTs of one config: token ids (K, B, T) → logits (K, B, T, V), member k on idx[k]."""

    def __init__(self, cfg: GPTConfig, k: int) -> None:
        super().__init__()
        # members would draw dropout masks from one shared generator: not their solo runs'
        assert cfg.dropout == 0, "a stacked GPT needs dropout 0"
        self.cfg, self.k = cfg, k
        self.tok = StackedEmbedding(k, cfg.vocab_size, cfg.d_model)
        self.pos = StackedEmbedding(k, cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList(StackedBlock(k, cfg) for _ in range(cfg.n_layer))
        self.ln_f = StackedLayerNorm(k, cfg.d_model)

    @classmethod
    def stack(cls, models: Sequence[GPT]) -> StackedGPT:
        """The K models' weights, stacked in order (member k is `models[k]`)."""
        cfg = models[0].cfg
        assert all(m.cfg == cfg for m in models), "stacked models share one GPTConfig"
        out = cls(cfg, len(models))
        solo = [dict(m.named_parameters()) for m in models]
        with torch.no_grad():
            for name, p in out.named_parameters():
                p.copy_(torch.stack([s[name] for s in solo]))
        return out

    @torch.no_grad()
    def member(self, k: int, into: GPT) -> GPT:
        """Copy member k's weights into the solo GPT `into` (same config) and return it."""
        mine = dict(self.named_parameters())
        for name, p in into.named_parameters():
            p.copy_(mine[name][k])
        return into

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        K, B, T = idx.shape
        members = torch.arange(K, device=idx.device)[:, None, None]
        x = self.tok.weight[members, idx] + self.pos.weight[:, None, :T]  # (K, B, T, C)
        x = x.reshape(K, B * T, -1)  # (K, B·T, C)
        for block in self.blocks:
            x = block(x, B, T)
        logits = torch.bmm(self.ln_f(x), self.tok.weight.transpose(1, 2))  # (K, B·T, V), tied
        return logits.view(K, B, T, -1)


def clip_per_member(grads: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip each member's gradient (dim 0 of every tensor is the member) to total norm
    `max_norm`, as `clip_grad_norm_` does for a solo GPT; return the K norms before."""
    grads = list(grads)
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()  # (K,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s rule
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
    return norms
