"""Resumable checkpoints: weights in safetensors, plus optimizer, RNG and data-stream state.

A checkpoint is a folder written under a temporary name and swapped in with
`os.replace`, so a run killed at any instant leaves either the old checkpoint or the
new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from raremix.errors import RaremixError

CKPT = "checkpoint"


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    data_state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write the state needed to continue bit-exactly from `step`; return its folder."""
    final = run_dir / CKPT
    tmp = run_dir / f".{CKPT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(_unwrap(model), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "data": data_state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        tmp / "state.pt",
    )
    (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=1))
    old = run_dir / f".{CKPT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The run's latest complete checkpoint folder, if any (recovering from a crash mid-swap)."""
    final, old = run_dir / CKPT, run_dir / f".{CKPT}.old"
    if not final.exists() and old.exists():
        os.replace(old, final)  # killed between the two renames: the old one is complete
    return final if (final / "meta.json").exists() else None


def load_checkpoint(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, expect: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Restore model, optimizer and RNG from `folder`; return (step, data_state).

    `expect` holds meta fields that must match (model shape, config hash); a mismatch is
    one clear error rather than a shape traceback from deep inside PyTorch.
    """
    meta = json.loads((folder / "meta.json").read_text())
    for key, want in expect.items():
        have = meta.get(key)
        if have != want:
            raise RaremixError(
                f"checkpoint in {folder} was saved with a different {key} ({_short(have)} vs {_short(want)} now): "
                "use a new run directory, or pass --no-resume to start over"
            )
    try:
        load_model(_unwrap(model), str(folder / "model.safetensors"))
    except RuntimeError as err:
        raise RaremixError(
            f"checkpoint in {folder} does not fit this model ({str(err).splitlines()[0][:120]}): "
            "use the model config it was saved with, or a new run directory"
        ) from None
    state = torch.load(folder / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(meta["step"]), state["data"]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) < 60 else text[:57] + "…"
