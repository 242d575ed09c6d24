"""Study directories for the analysis and report tests.

`real_study` trains a tiny scale-vs-mix study once per test session (shared by pytest-xdist
workers through a file lock); `fake_study` writes a store directly, with chosen accuracy
curves and probe rows, in milliseconds.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import yaml

from raremix.cli import main
from raremix.results.store import ResultStore
from raremix.studies.analysis import execute_study
from raremix.studies.runner import run_study
from raremix.studies.spec import StudySpec, load_spec

LAB = Path(__file__).parents[2] / "src/raremix/configs/lab.yaml"
SCALE = Path(__file__).parents[2] / "src/raremix/studies/scale/scale-vs-mix.yaml"


def tiny_spec() -> StudySpec:
    """scale-vs-mix in miniature: 12k and 25k × natural and upweight, one seed, 60 steps."""
    spec = load_spec(SCALE)
    assert isinstance(spec.base, dict)
    base = {**spec.base, "steps": 60, "eval_every": 15, "eval_examples": 32, "batch_size": 32}
    mixes = {k: v for k, v in spec.axes["mixture"].items() if k in ("natural", "upweight")}
    axes = {"model.size": ["12k", "25k"], "mixture": mixes, "seed": [0]}
    # its own small axes: the packaged hypotheses name arms (sizes) this study does not run
    return spec.model_copy(update={"base": base, "axes": axes, "quick": None, "hypotheses": None})


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """A temp dir shared by this session's xdist workers (the session's own without xdist)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def real_study(factory: pytest.TempPathFactory) -> Path:
    """The tiny study, trained by whichever worker gets here first (~15 s), then reused."""
    out = shared_root(factory) / "tiny-scale-vs-mix"
    with _locked(out.with_suffix(".lock")):
        if not (out / "analysis" / "verdict.json").exists():
            outcome = run_study(tiny_spec(), out, workers=2, progress=False)
            assert outcome.ok and outcome.analyzed, outcome.failed
    return out


def real_report(factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny study with its report, written once through `raremix report` (in process);
    returns the study dir and what the command printed."""
    out = real_study(factory)
    printed = out / "cli-output.txt"
    with _locked(out.with_suffix(".lock")):
        if not printed.exists():
            text, code = io.StringIO(), None
            with mock.patch.object(sys, "argv", ["raremix", "report", str(out)]):
                with redirect_stdout(text), pytest.raises(SystemExit) as ended:
                    main()
                code = ended.value.code
            assert code in (0, None), text.getvalue()
            printed.write_text(text.getvalue())
    return out, printed.read_text()


def theory_dir(factory: pytest.TempPathFactory) -> Path:
    """A quick theory-lab study dir, run once per session."""
    out = shared_root(factory) / "theory-quick"
    with _locked(out.with_suffix(".lock")):
        if not (out / "analysis" / "verdict.json").exists():
            execute_study("theory", out, quick=True, echo=False)
    return out


def _config(size: str, strategy: str, seed: int, **extra: Any) -> dict[str, Any]:
    cfg = yaml.safe_load(LAB.read_text())
    cfg["model"]["size"], cfg["seed"] = size, seed
    cfg["mixture"]["strategy"] = strategy
    cfg["mixture"]["params"] = (
        {"tasks": ["compare"], "factor": 10} if strategy == "upweight" else {}
    )
    return {**cfg, **extra}


EVIDENCE = {
    "compare": {"n": 256.0, "chance": 1 / 3, "majority": 0.45, "heuristic": 0.73},
    "copy": {"n": 256.0, "chance": 2e-5, "majority": 0.004},  # no heuristic rule
    "inc": {"n": 40.0, "chance": 2e-4, "majority": 0.025, "heuristic": 0.1},
}
"""fake_study's held-out n and baselines per task, as raremix.evaluate writes them."""


def fake_study(
    root: Path,
    *,
    probes: bool = False,
    rare_acc: dict[tuple[str, str], float] | None = None,
    seeds: tuple[int, ...] = (0, 1),
    tasks: tuple[str, ...] = ("compare", "copy", "inc"),
    evidence: bool = False,
) -> Path:
    """A scale-vs-mix study dir with hand-made curves: rare acc rises to `rare_acc[size, mix]`.

    Common tasks reach 0.9; the 12k natural run forgets the rare task once (0.7 → 0.3);
    with `probes`, probe/interference (rare task) and probe/neuron_share (every task) rows
    and a flat probe/dead_neurons (0 throughout); with `evidence`, each evaluation's held-out
    n and baselines (`EVIDENCE`).
    """
    finals = rare_acc or {
        ("12k", "natural"): 0.3,
        ("100k", "natural"): 0.7,
        ("12k", "upweight"): 0.9,
        ("100k", "upweight"): 0.95,
    }
    params = {"12k": 12_000, "100k": 96_000}
    store = ResultStore(root / "store")
    steps = np.arange(0, 1001, 100)
    for (size, mix), top in finals.items():
        for seed in seeds:
            run_id = f"{size}-{mix}-{seed}"
            rows = []
            for i, step in enumerate(steps):
                ramp = min(1.0, step / 600)
                for task in tasks:
                    acc = top * ramp if task == "compare" else 0.9 * ramp
                    if task == "compare" and (size, mix) == ("12k", "natural") and step == 500:
                        acc = 0.7  # a peak, then a drop > 0.2 at step 600
                    acc = min(1.0, acc + 0.01 * seed)
                    rows += [
                        {"step": int(step), "task": task, "metric": "acc", "value": acc},
                        {"step": int(step), "task": task, "metric": "loss", "value": 2 - acc},
                    ]
                    if evidence:
                        rows += [
                            {"step": int(step), "task": task, "metric": m, "value": v}
                            for m, v in EVIDENCE[task].items()
                        ]
                    if probes:
                        share = 0.1 * (1 + (task == "compare") * (mix == "upweight"))
                        rows.append(
                            {
                                "step": int(step),
                                "task": task,
                                "metric": "probe/neuron_share",
                                "value": share * (params[size] / 12_000) ** 0.1,
                            }
                        )
                if probes:
                    cos = 0.6 * np.exp(-i / 3) - 0.05 * (size == "12k")
                    rows.append(
                        {
                            "step": int(step),
                            "task": "compare",
                            "metric": "probe/interference",
                            "value": float(cos),
                        }
                    )
                    rows.append(
                        {
                            "step": int(step),
                            "task": "",
                            "metric": "probe/dead_neurons",
                            "value": 0.0,
                        }
                    )
                rows.append({"step": int(step), "task": "", "metric": "lr", "value": 0.003})
            info = {
                "study": "scale-vs-mix",
                "model_size": size,
                "mixture": mix,
                "seed": str(seed),
                "wall_s": 10.0 + seed,
                "config": _config(size, mix, seed, steps=1000),
                "params": params[size],
                "flops": params[size] * 6.0e6,
                "steps": 1000,
            }
            store.add_run(run_id, info, rows)
    spec = {
        "name": "scale-vs-mix",
        "description": "A fake study written by the tests.",
        "base": _config("12k", "natural", 0, steps=1000),
        "axes": {
            "model.size": ["12k", "100k"],
            "mixture": {"natural": {}, "upweight": {}},
            "seed": list(seeds),
        },
    }
    (root / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def onset_study(
    root: Path,
    onsets: dict[tuple[str, str], list[int | None]],
    common: dict[tuple[str, str], float] | None = None,
) -> Path:
    """A scale-vs-mix study dir whose rare task (compare) is learned at known steps.

    `onsets[size, mix]` lists one onset step per seed (None: never): compare's acc is 0.1
    before it and 0.95 from it on; the common tasks sit at `common[size, mix]` (0.95 if
    unnamed) throughout. Sizes 12k (12,000 params) and 100k (96,000); 1,000 steps, one
    evaluation every 100, FLOPs = 6,000 × params per step.
    """
    params = {"12k": 12_000, "100k": 96_000}
    store = ResultStore(root / "store")
    for (size, mix), steps_at in onsets.items():
        for seed, onset in enumerate(steps_at):
            top = (common or {}).get((size, mix), 0.95)
            rows = []
            for step in range(0, 1001, 100):
                learned = onset is not None and step >= onset
                for task in ("compare", "copy", "inc"):
                    acc = (0.95 if learned else 0.1) if task == "compare" else top
                    rows += [
                        {"step": step, "task": task, "metric": "acc", "value": acc},
                        {"step": step, "task": task, "metric": "loss", "value": 2 - acc},
                    ]
            info = {
                "study": "scale-vs-mix",
                "model_size": size,
                "mixture": mix,
                "seed": str(seed),
                "wall_s": 1.0,
                "config": _config(size, mix, seed, steps=1000),
                "params": params[size],
                "flops": params[size] * 6.0e6,
                "steps": 1000,
            }
            store.add_run(f"{size}-{mix}-{seed}", info, rows)
    seeds = list(range(max(len(v) for v in onsets.values())))
    spec = {
        "name": "scale-vs-mix",
        "base": _config("12k", "natural", 0, steps=1000),
        "axes": {
            "model.size": sorted({s for s, _ in onsets}),
            "seed": seeds,
            "mixture": {m: {} for m in sorted({m for _, m in onsets})},
        },
    }
    (root / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def injection_study(root: Path, acc: dict[tuple[str, str], float]) -> Path:
    """An injection study dir: rare tasks compare and modadd at explicit rates, one seed."""
    rates = {"1/10 batches": 0.0015625, "2/batch": 0.03125, "8/batch": 0.125}
    store = ResultStore(root / "store")
    for size, p in (("12k", 12_000), ("100k", 96_000)):
        for label, w in rates.items():
            weights = {"copy": 1 - 2 * w, "compare": w, "modadd": w}
            cfg = _config(size, "natural", 0, steps=100, batch_size=64, rare=["compare", "modadd"])
            cfg["mixture"] = {
                "strategy": "explicit",
                "params": {"weights": weights},
                "sources": [{"name": n, "size": 100_000} for n in weights],
            }
            rows = [
                {"step": s, "task": t, "metric": m, "value": acc.get((t, size, label), 0.95)}
                for s in (0, 50, 100, 150)
                for t in ("copy", "compare", "modadd")
                for m in ("acc", "loss")
            ]
            info = {
                "study": "injection",
                "model_size": size,
                "mixture": label,
                "seed": "0",
                "config": json.dumps(cfg),
                "params": p,
                "flops": 1e9,
                "wall_s": 1.0,
            }
            store.add_run(f"{size}-{label.replace('/', '_').replace(' ', '_')}", info, rows)
    spec = {
        "name": "injection",
        "analysis": "injection",
        "axes": {"model.size": ["12k", "100k"], "mixture": {k: {} for k in rates}, "seed": [0]},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(spec))
    return root
