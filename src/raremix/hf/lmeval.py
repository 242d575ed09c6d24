"""Per-task results in the JSON layout of EleutherAI's lm-evaluation-harness (0.4.x).

`lm_eval` writes `results_<date>.json` with `results` ({task: {"alias", "acc,none",
"acc_stderr,none", …}}), `group_subtasks`, `configs`, `versions`, `n-shot`,
`higher_is_better`, `n-samples` and the run's `config`; tools that read those files
(leaderboards, comparison scripts, `lm_eval.utils.make_table`) read raremix's too. The
standard error is lm-eval's for a mean of 0/1 scores: sqrt(p(1 − p)/(n − 1)).
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raremix import __version__
from raremix.errors import RaremixError

FOLDER = "lm_eval"
"""Where in a run directory the results file goes."""


def acc_stderr(acc: float, n: int) -> float | str:
    """lm-eval's `mean_stderr` of n 0/1 scores with mean `acc` ("N/A" when n < 2)."""
    return math.sqrt(acc * (1 - acc) / (n - 1)) if n >= 2 else "N/A"


def lmeval_results(
    metrics: Mapping[str, Mapping[str, float]],
    counts: Mapping[str, int],
    *,
    model: str,
    model_args: str = "",
    judge: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The lm-eval results document for {task: {"acc": …, "loss": …}} scored on `counts[task]` examples.

    `judge` names how each task was scored ("exact_match" or "verifier"); `config`
    goes into the document's `config` beside lm-eval's own keys.
    """
    tasks = sorted(metrics)
    missing = [t for t in tasks if t not in counts]
    if missing:
        raise RaremixError(
            f"lm-eval export: no example count for task '{missing[0]}': pass counts for every task"
        )
    results: dict[str, dict[str, Any]] = {}
    for t in tasks:
        acc = float(metrics[t]["acc"])
        entry: dict[str, Any] = {
            "alias": t,
            "acc,none": acc,
            "acc_stderr,none": acc_stderr(acc, counts[t]),
        }
        if "loss" in metrics[t]:
            entry.update({"loss,none": float(metrics[t]["loss"]), "loss_stderr,none": "N/A"})
        results[t] = entry
    how = dict(judge or {})
    return {
        "results": results,
        "group_subtasks": {t: [] for t in tasks},
        "configs": {
            t: {
                "task": t,
                "output_type": "generate_until",
                "num_fewshot": 0,
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
                "generation_kwargs": {"do_sample": False, "until": ["<eos>"]},
                "metadata": {
                    "version": 1.0,
                    "source": "raremix",
                    "scored_by": how.get(t, "exact_match"),
                },
            }
            for t in tasks
        },
        "versions": {t: 1.0 for t in tasks},
        "n-shot": {t: 0 for t in tasks},
        "higher_is_better": {t: {"acc": True, "loss": False} for t in tasks},
        "n-samples": {t: {"original": int(counts[t]), "effective": int(counts[t])} for t in tasks},
        "config": {
            "model": model,
            "model_args": model_args,
            "batch_size": None,
            "batch_sizes": [],
            "device": None,
            "use_cache": None,
            "limit": None,
            "bootstrap_iters": 0,
            "gen_kwargs": None,
            **dict(config or {}),
        },
        "git_hash": None,
        "date": time.time(),
        "raremix_version": __version__,
    }


def write_lmeval(run_dir: str | Path, document: Mapping[str, Any]) -> Path:
    """Write `document` as `run_dir/lm_eval/results_<date>.json` (replacing earlier ones)."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("results_*.json"):
        old.unlink()
    stamp = datetime.datetime.now().isoformat().replace(":", "-")
    path = folder / f"results_{stamp}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str))
    tmp.replace(path)
    return path


def read_lmeval(run_dir: str | Path) -> dict[str, Any]:
    """The run's lm-eval results document."""
    found = sorted((Path(run_dir) / FOLDER).glob("results_*.json"))
    if not found:
        raise RaremixError(
            f"{run_dir}: no {FOLDER}/results_*.json: export it with `raremix export-lmeval {run_dir}`"
        )
    doc: dict[str, Any] = json.loads(found[-1].read_text())
    return doc


def export_run(run_dir: str | Path) -> Path:
    """Write the lm-eval document of a finished `raremix train` run (its last evaluation).

    Example counts are the `n` rows the evaluation wrote; runs from before those rows
    existed get them from their held-out sets, rebuilt from `config.yaml`.
    """
    from raremix.config import load_config
    from raremix.data import TaskData
    from raremix.results.rows import load_rows

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    rows = [
        r
        for r in load_rows(run_dir / "metrics.jsonl")
        if r["metric"] in ("acc", "loss", "n") and r["task"]
    ]
    if not rows:
        raise RaremixError(f"{run_dir}: no evaluation rows in metrics.jsonl: train the run first")
    step = max(r["step"] for r in rows)
    metrics: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["step"] == step:
            metrics.setdefault(r["task"], {})[r["metric"]] = r["value"]
    data = TaskData(cfg, list(cfg.tasks))
    sets = data.eval_sets(cfg.eval_examples)
    counts = {t: int(metrics.get(t, {}).get("n", len(s))) for t, s in sets.items()}
    judge = {t: "verifier" if s.task.kind == "open" else "exact_match" for t, s in sets.items()}
    doc = lmeval_results(
        metrics,
        counts,
        model="raremix",
        judge=judge,
        model_args=f"run_dir={run_dir}",
        config={"step": step, "config_hash": cfg.hash()},
    )
    return write_lmeval(run_dir, doc)
