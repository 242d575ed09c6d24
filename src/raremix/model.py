"""A small decoder-only GPT, its size ladder, and parameter / FLOP accounting.

One readable file in the nanoGPT mould: pre-LayerNorm blocks, learned positions,
GELU MLP, PyTorch SDPA causal attention, input and output embeddings tied. Shapes are
written beside the ops: B batch, T time, C channels (d_model), H heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from raremix.configbase import Config
from raremix.errors import RaremixError, unknown

# Sane upper bounds, checked before anything is allocated (a typo'd 10**10 would otherwise
# ask the allocator for terabytes, or build modules for hours).
MAX_LAYERS = 256
MAX_D_MODEL = 16_384
MAX_MLP_RATIO = 64
MAX_BLOCK = 65_536
MAX_VOCAB = 1_048_576
MAX_PARAMS = 2 * 10**9  # AdamW training state in fp32: ~32 GB


class GPTConfig(Config):
    """Shape of a GPT. `vocab_size` and `block_size` are set from the tokenizer and tasks."""

    n_layer: int = Field(2, ge=1, le=MAX_LAYERS)
    """Number of transformer blocks (depth)."""
    d_model: int = Field(32, ge=4, le=MAX_D_MODEL)
    """Residual stream width."""
    n_head: int = Field(2, ge=1, le=MAX_D_MODEL)
    """Attention heads; must divide d_model."""
    mlp_ratio: float = Field(4.0, gt=0, le=MAX_MLP_RATIO)
    """MLP hidden width as a multiple of d_model."""
    vocab_size: int = Field(128, ge=2, le=MAX_VOCAB)
    """Tokens in the vocabulary."""
    block_size: int = Field(64, ge=2, le=MAX_BLOCK)
    """Longest sequence the model accepts (sets the position table)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on attention and MLP outputs (0 keeps training deterministic and fast)."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> GPTConfig:
        if self.d_model % self.n_head:
            raise ValueError(
                f"n_head {self.n_head} must divide d_model {self.d_model}: "
                f"try n_head {heads_for(self.d_model)}"
            )
        params = count_params(self)
        if params > MAX_PARAMS:
            raise ValueError(
                f"the model would have {params:.3g} parameters, above the {MAX_PARAMS:.0e} bound: "
                "choose a smaller size, d_model or n_layer"
            )
        return self

    @property
    def d_mlp(self) -> int:
        return max(1, round(self.mlp_ratio * self.d_model))


# The ladder: each rung roughly doubles the parameters (at the lab's ~40-token vocab and
# 32-token block). The CPU rungs span 12K → 4M (250×); the GPU rungs go on to ~85M.
LADDER: dict[str, tuple[int, int, int]] = {  # name: (d_model, n_layer, n_head)
    "12k": (24, 2, 2),
    "25k": (32, 2, 2),
    "50k": (40, 2, 2),
    "100k": (48, 3, 3),
    "200k": (64, 4, 4),
    "400k": (80, 5, 5),
    "1m": (128, 5, 8),
    "2m": (160, 6, 10),
    "4m": (256, 5, 16),
    "16m": (384, 9, 12),
    "85m": (768, 12, 12),
}


def heads_for(d_model: int) -> int:
    """A head count that divides d_model with head size near 16."""
    return next(h for h in range(max(1, d_model // 16), 0, -1) if d_model % h == 0)


def ladder_config(size: str, vocab_size: int, block_size: int, mlp_ratio: float = 4.0) -> GPTConfig:
    """The GPTConfig of a named ladder rung (e.g. '25k', '1m')."""
    if size not in LADDER:
        raise unknown("model size", size, LADDER)
    d, n_layer, n_head = LADDER[size]
    return GPTConfig(
        n_layer=n_layer,
        d_model=d,
        n_head=n_head,
        mlp_ratio=mlp_ratio,
        vocab_size=vocab_size,
        block_size=block_size,
    )


def width_for_budget(
    params: int, n_layer: int, vocab_size: int, block_size: int, mlp_ratio: float = 4.0
) -> GPTConfig:
    """The widest GPT of depth `n_layer` within `params` parameters (deep-thin vs wide-shallow).

    Width is a multiple of 4 so that a head count near d/16 divides it.
    """
    if params <= 0 or n_layer <= 0:
        raise RaremixError(
            f"width_for_budget: params ({params}) and n_layer ({n_layer}) must be positive"
        )
    best: GPTConfig | None = None
    for d in range(4, 4097, 4):
        cfg = GPTConfig(
            n_layer=n_layer,
            d_model=d,
            n_head=heads_for(d),
            mlp_ratio=mlp_ratio,
            vocab_size=vocab_size,
            block_size=block_size,
        )
        if count_params(cfg) > params:
            break
        best = cfg
    if best is None:
        raise RaremixError(
            f"no GPT with {n_layer} layers fits in {params} parameters: raise the budget or lower the depth"
        )
    return best


def count_params(cfg: GPTConfig, embeddings: bool = True) -> int:
    """Exact parameter count of `GPT(cfg)` (embeddings tied, so counted once)."""
    d, f = cfg.d_model, cfg.d_mlp
    attn = d * 3 * d + 3 * d + d * d + d  # qkv and output projections with biases
    mlp = d * f + f + f * d + d
    norms = 2 * 2 * d
    body = cfg.n_layer * (attn + mlp + norms) + 2 * d  # + final LayerNorm
    emb = cfg.vocab_size * d + cfg.block_size * d
    return body + (emb if embeddings else 0)


def flops_per_token(cfg: GPTConfig, seq_len: int) -> int:
    """Training FLOPs per token: 6·N (non-embedding) + 6·L·T·d attention (Kaplan et al. 2020)."""
    n = (
        count_params(cfg, embeddings=False) + cfg.vocab_size * cfg.d_model
    )  # output head is a matmul
    return 6 * n + 6 * cfg.n_layer * seq_len * cfg.d_model


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 × (B, T, C)
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, H, T, C/H)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, C/H)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.act = nn.GELU()
        self.out = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc(x)))  # (B, T, C); probes hook `act` for neuron activity


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))  # (B, T, C)
        return x + self.drop(self.mlp(self.ln2(x)))  # (B, T, C)


class GPT(nn.Module):
    """Decoder-only transformer: token ids (B, T) → next-token logits (B, T, V)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("attn.proj.weight", "mlp.out.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _B, T = idx.shape
        if self.cfg.block_size < T:
            raise RaremixError(
                f"sequence of {T} tokens exceeds the model's block_size {self.cfg.block_size}: raise model.block_size"
            )
        pos = torch.arange(T, device=idx.device)
        x = self.tok(idx) + self.pos(pos)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.ln_f(x) @ self.tok.weight.T  # (B, T, V), tied output head

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
