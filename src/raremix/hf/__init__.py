"""Bring your own model: train or fine-tune any Hugging Face causal LM on a raremix mixture.

    from raremix.hf import load_hf_config, train_hf
    state = train_hf(load_hf_config("hf.yaml"), "runs/hf")   # or: raremix hf-train hf.yaml

`config` (HFTrainConfig) → `data` (tagged rows or synthetic tasks as text, tokenised with
the model's tokenizer) → `train` (the loop; raremix's sampler picks every example) →
`evaluate` (greedy generation + verifier / exact match) → `lmeval` (results in the
lm-evaluation-harness layout). `tiny` builds random tiny models offline. Needs the
`hf` extra (transformers); `lmeval` and `config` do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raremix.hf.config import HFTrainConfig, load_hf_config

if TYPE_CHECKING:
    from raremix.hf.train import HFState, train_hf

__all__ = ["HFState", "HFTrainConfig", "load_hf_config", "train_hf"]


def __getattr__(name: str) -> Any:
    if name in ("HFState", "train_hf"):  # pulls in transformers: import on use
        from raremix.hf import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
