"""Resumable checkpoints with no pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder:

    model.safetensors   the weights
    state.safetensors   optimizer state tensors (Adam moments, step counts) and RNG states
    state.json          the step, optimizer hyper-parameters, data-stream state
    meta.json           the manifest: format, step, what must match on resume (model
                        shape, config hash) and the sha256 of each file above

Loading parses only safetensors and JSON, so a crafted checkpoint cannot run code; every
file is checked against its sha256 before it is read, so a damaged checkpoint is one
clear error, never a silent restart. The folder is written and fsynced under a temporary
name, then swapped in with `os.replace`: a run killed (or a machine losing power) at any
instant leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from raremix.errors import RaremixError

CKPT = "checkpoint"
FORMAT = "raremix-checkpoint/2"
META = "meta.json"
WEIGHTS = "model.safetensors"
TENSORS = "state.safetensors"
STATE = "state.json"
HASHED = (WEIGHTS, TENSORS, STATE)
"""The files whose sha256 `meta.json` records, in the order they are written."""


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    data_state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write the state needed to continue bit-exactly from `step`; return its folder.

    `data_state` must be JSON-able (sampler cursors, loss sums); `meta` holds the fields
    `load_checkpoint` checks (model shape, config hash). A failed write (disk full,
    permission denied) is one `RaremixError` and leaves the last good checkpoint as it was.
    """
    final, tmp, old = run_dir / CKPT, run_dir / f".{CKPT}.tmp", run_dir / f".{CKPT}.old"
    target = tmp  # what is being written, for the error message (safetensors names no path)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        target = tmp / WEIGHTS
        save_model(_unwrap(model), str(target))
        tensors, plain = _split_optimizer(optimizer.state_dict())
        target = tmp / TENSORS
        save_file({**tensors, **_rng_tensors()}, str(target))
        state = {"step": step, "optimizer": plain, "data": data_state}
        (tmp / STATE).write_text(json.dumps(state))
        files = {name: _sha256(tmp / name) for name in HASHED}
        manifest = {**meta, "format": FORMAT, "step": step, "files": files}
        (tmp / META).write_text(json.dumps(manifest, indent=1))
        for name in (*HASHED, META, "."):  # on disk before the swap, so power loss keeps one whole
            _fsync(tmp / name)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except (OSError, SafetensorError) as err:
        if old.exists() and not final.exists():
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        where = err.filename if isinstance(err, OSError) and err.filename else target
        kept = f"the last good one in {final} is intact" if final.exists() else "none was kept"
        raise RaremixError(
            f"cannot write the checkpoint of step {step}: {where}: {_why(err, path=False)}; "
            f"{kept}: free disk space or fix permissions, then rerun to resume"
        ) from None
    shutil.rmtree(old, ignore_errors=True)
    _fsync(run_dir)
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The run's latest checkpoint folder, or None if it never wrote one.

    Recovers from a crash between the two renames of `save_checkpoint`. A checkpoint
    folder without its manifest is an error, not a reason to start over.
    """
    final, old = run_dir / CKPT, run_dir / f".{CKPT}.old"
    if not final.exists() and old.exists():
        os.replace(old, final)  # killed between the two renames: the old one is complete
    if not final.exists():
        return None
    if not (final / META).is_file():
        raise RaremixError(f"{final / META} is missing: {_restart(final)}")
    return final


def load_checkpoint(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, expect: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Restore model, optimizer and RNG from `folder`; return (step, data_state).

    `expect` holds meta fields that must match (model shape, config hash); a mismatch is
    one clear error rather than a shape traceback from deep inside PyTorch. Every file is
    checked against its sha256 in `meta.json` before it is read.
    """
    meta = read_meta(folder)
    for key, want in expect.items():
        have = meta.get(key)
        if have != want:
            raise RaremixError(
                f"checkpoint in {folder} was saved with a different {key} ({_short(have)} vs {_short(want)} now): "
                "use a new run directory, or pass --no-resume to start over"
            )
    verify(folder, meta)
    try:
        load_model(_unwrap(model), str(folder / WEIGHTS))
    except RuntimeError as err:
        raise RaremixError(
            f"checkpoint in {folder} does not fit this model ({str(err).splitlines()[0][:120]}): "
            "use the model config it was saved with, or a new run directory"
        ) from None
    except SafetensorError as err:
        raise RaremixError(
            f"{folder / WEIGHTS} is unreadable ({_why(err)}): {_restart(folder)}"
        ) from None
    try:
        state = json.loads((folder / STATE).read_text())
    except ValueError as err:
        raise RaremixError(
            f"{folder / STATE} is unreadable ({_why(err)}): {_restart(folder)}"
        ) from None
    try:
        tensors = load_file(folder / TENSORS)
    except SafetensorError as err:
        raise RaremixError(
            f"{folder / TENSORS} is unreadable ({_why(err)}): {_restart(folder)}"
        ) from None
    try:
        if state["step"] != meta["step"]:
            raise ValueError(f"{META} says step {meta['step']}, {STATE} says {state['step']}")
        optimizer.load_state_dict(_join_optimizer(state["optimizer"], tensors, optimizer))
        torch.set_rng_state(tensors["rng/torch"])
        cuda = sorted(k for k in tensors if k.startswith("rng/cuda/"))
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
        data = state["data"]
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as err:
        raise RaremixError(
            f"checkpoint in {folder} is inconsistent ({_why(err)}): {_restart(folder)}"
        ) from None
    return int(meta["step"]), data


def read_meta(folder: Path) -> dict[str, Any]:
    """The checkpoint's `meta.json`, checked: current format, whole step, a checksum per file."""
    path = folder / META
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RaremixError(f"{path} is unreadable ({_why(err)}): {_restart(folder)}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        if (folder / "state.pt").exists():
            raise RaremixError(
                f"{folder} was written by an older raremix (state.pt, a pickle, which raremix no "
                f"longer loads because loading one can run code): {_restart(folder)}"
            )
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise RaremixError(
            f"{path} is not a {FORMAT} manifest (format {got!r}): {_restart(folder)}"
        )
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise RaremixError(
            f"{path}: step must be a whole number >= 0, not {step!r}: {_restart(folder)}"
        )
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(files.get(n), str) for n in HASHED):
        raise RaremixError(f"{path} lacks the sha256 of {', '.join(HASHED)}: {_restart(folder)}")
    return meta


def verify(folder: Path, meta: dict[str, Any]) -> None:
    """Check every checkpoint file against the sha256 recorded in `meta` (see `read_meta`)."""
    for name in HASHED:
        path = folder / name
        if not path.is_file():
            raise RaremixError(f"{path} is missing: {_restart(folder)}")
        if _sha256(path) != meta["files"][name]:
            raise RaremixError(
                f"{path} is damaged (its sha256 differs from the one in {META}): {_restart(folder)}"
            )


def load_weights(folder: Path, model: torch.nn.Module) -> None:
    """Load only the weights of the checkpoint in `folder` (a finished run's model), verified."""
    verify(folder, read_meta(folder))
    load_model(_unwrap(model), str(folder / WEIGHTS))


def _split_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer `state_dict` as (tensors named `optimizer/<param>/<slot>`, the JSON rest)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, slots in sd["state"].items():
        plain[str(pid)] = {}
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{slot}"] = value.detach().cpu().contiguous()
            else:
                plain[str(pid)][slot] = value
    return tensors, {"state": plain, "param_groups": sd["param_groups"]}


def _join_optimizer(
    plain: dict[str, Any], tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """The inverse of `_split_optimizer`, for `optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {int(pid): dict(s) for pid, s in plain["state"].items()}
    for key, tensor in tensors.items():
        if key.startswith("optimizer/"):
            _, pid, slot = key.split("/", 2)
            state[int(pid)][slot] = tensor
    live = optimizer.param_groups
    groups = []
    for i, saved in enumerate(plain["param_groups"]):
        # JSON has no tuples: give back the live group's tuple fields (Adam's betas) as tuples
        now = live[i] if i < len(live) else {}  # a count mismatch is load_state_dict's error
        groups.append(
            {k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}
        )
    return {"state": state, "param_groups": groups}


def _rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out |= {f"rng/cuda/{i:03d}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flush `path` to disk; for a folder (its entries) only where the filesystem allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not path.is_dir():
            raise


def _restart(folder: Path) -> str:
    return (
        f"delete {folder} (or pass --no-resume) to restart from step 0, or restore it from a backup"
    )


def _why(err: BaseException, path: bool = True) -> str:
    """An exception as one short line: an OSError's errno text (and path), else its message."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.filename}: {err.strerror}" if err.filename and path else err.strerror
    text = (str(err).splitlines() or [type(err).__name__])[0]
    return text.rpartition("I/O error: ")[2][
        :160
    ]  # safetensors: "Error while serializing: I/O error: …"


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) < 60 else text[:57] + "…"
