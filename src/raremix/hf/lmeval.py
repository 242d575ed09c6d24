"""Per-task results as EleutherAI's lm-evaluation-harness (0.4.x) writes them.

`lm_eval --output_path OUT` writes `OUT/<model_name_sanitized>/results_<date>.json` and,
with `--log_samples`, `samples_<task>_<date>.jsonl` beside it; earlier runs' files stay.
The results file has `results` ({task: {"alias", "exact_match,none",
"exact_match_stderr,none", …}}, the metric name then lm-eval's filter, "none"),
`group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`, the
run's `config`, `task_hashes`, and its general-config keys (`model_name`,
`model_name_sanitized`, …). raremix writes the same, so lm-eval's own tools
(`lm_eval.utils.get_results_filenames`, `get_latest_filename`, `make_table`, …) read it.
A task scored by exact match reports `exact_match`; one judged by a synthetic task's
verifier (several answers may be right) reports `acc`. The standard error is lm-eval's
for a mean of 0/1 scores: sqrt(p(1 − p)/(n − 1)).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raremix import __version__
from raremix.errors import RaremixError

FOLDER = "lm_eval"
"""Where in a run directory lm-eval's output folder is (its --output_path)."""
FILTER = "none"
"""lm-eval's name for "no filter": metric keys are `<metric>,none`."""
METRIC = {"exact_match": "exact_match", "verifier": "acc"}
"""How a task was scored → the metric name lm-eval reports it under."""
MODEL_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")
"""lm-eval's model_args keys that name the model, in its order of preference."""


def acc_stderr(acc: float, n: int) -> float | str:
    """lm-eval's `mean_stderr` of n 0/1 scores with mean `acc` ("N/A" when n < 2)."""
    return math.sqrt(acc * (1 - acc) / (n - 1)) if n >= 2 else "N/A"


def sanitize_model_name(name: str) -> str:
    """lm-eval's folder name for a model (`lm_eval.utils.sanitize_model_name`)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def model_name(model: str, model_args: str) -> str:
    """The model's name as lm-eval takes it from model_args (pretrained=…), else `model`."""
    for key in MODEL_KEYS:
        if f"{key}=" in model_args:
            return model_args.split(f"{key}=")[1].split(",")[0]
    return model


def hash_string(text: str) -> str:
    """lm-eval's `hash_string`: sha256 hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lmeval_sample(
    doc_id: int, prompt: str, target: str, response: str, metric: str, score: float
) -> dict[str, Any]:
    """One line of lm-eval's samples file for a generated response (generate_until, no filter)."""
    doc = {"prompt": prompt, "response": target}
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"do_sample": False}}},
        "resps": [[response]],
        "filtered_resps": [response],
        "filter": FILTER,
        "metrics": [metric],
        "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": hash_string(prompt),
        "target_hash": hash_string(target),
        metric: score,
    }


def lmeval_results(
    metrics: Mapping[str, Mapping[str, float]],
    counts: Mapping[str, int],
    *,
    model: str,
    model_args: str = "",
    judge: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    samples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The lm-eval results document for {task: {"acc": …, "loss": …}} scored on `counts[task]` examples.

    `judge` names how each task was scored ("exact_match", the default, or "verifier"),
    which names its metric; `config` goes into the document's `config` beside lm-eval's
    own keys; `samples` ({task: lmeval_sample rows}) give `task_hashes` as lm-eval does.
    """
    tasks = sorted(metrics)
    missing = [t for t in tasks if t not in counts]
    if missing:
        raise RaremixError(
            f"lm-eval export: no example count for task '{missing[0]}': pass counts for every task"
        )
    how = {t: (judge or {}).get(t, "exact_match") for t in tasks}
    unknown = [h for h in how.values() if h not in METRIC]
    if unknown:
        raise RaremixError(
            f"lm-eval export: unknown judge '{unknown[0]}': use exact_match or verifier"
        )
    name = {t: METRIC[how[t]] for t in tasks}
    results: dict[str, dict[str, Any]] = {}
    for t in tasks:
        acc = float(metrics[t]["acc"])
        entry: dict[str, Any] = {
            "alias": t,
            f"{name[t]},{FILTER}": acc,
            f"{name[t]}_stderr,{FILTER}": acc_stderr(acc, counts[t]),
        }
        if "loss" in metrics[t]:
            entry.update(
                {f"loss,{FILTER}": float(metrics[t]["loss"]), f"loss_stderr,{FILTER}": "N/A"}
            )
        results[t] = entry
    now, named = time.time(), model_name(model, model_args)
    return {
        "results": results,
        "group_subtasks": {t: [] for t in tasks},
        "configs": {
            t: {
                "task": t,
                "output_type": "generate_until",
                "num_fewshot": 0,
                "metric_list": [
                    {"metric": name[t], "aggregation": "mean", "higher_is_better": True}
                ],
                "generation_kwargs": {"do_sample": False, "until": ["<eos>"]},
                "metadata": {"version": 1.0, "source": "raremix", "scored_by": how[t]},
            }
            for t in tasks
        },
        "versions": {t: 1.0 for t in tasks},
        "n-shot": {t: 0 for t in tasks},
        "higher_is_better": {t: {name[t]: True, "loss": False} for t in tasks},
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
        "date": now,
        "task_hashes": {
            t: hash_string(
                "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in rows)
            )
            for t, rows in (samples or {}).items()
        },
        # lm-eval's GeneralConfigTracker, as its EvaluationTracker adds it
        "model_source": model,
        "model_name": named,
        "model_name_sanitized": sanitize_model_name(named),
        "system_instruction": None,
        "system_instruction_sha": None,
        "fewshot_as_multiturn": False,
        "chat_template": None,
        "chat_template_sha": None,
        "start_time": now,
        "end_time": now,
        "total_evaluation_time_seconds": "0",
        "raremix_version": __version__,
    }


def write_lmeval(
    run_dir: str | Path,
    document: Mapping[str, Any],
    samples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Path:
    """Write `document` where `lm_eval --output_path RUN_DIR/lm_eval` would:
    `lm_eval/<model_name_sanitized>/results_<date>.json`, and each task's `samples` as
    `samples_<task>_<date>.jsonl`. Earlier results are kept, as lm-eval keeps them."""
    folder = Path(run_dir) / FOLDER / str(document.get("model_name_sanitized") or "raremix")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().isoformat().replace(":", "-")
    for task, rows in (samples or {}).items():
        _write_atomic(
            folder / f"samples_{task}_{stamp}.jsonl",
            "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows),
        )
    path = folder / f"results_{stamp}.json"
    _write_atomic(path, json.dumps(document, indent=2, default=str, ensure_ascii=False))
    return path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def lmeval_files(run_dir: str | Path) -> list[Path]:
    """A run's lm-eval results files, oldest first (by the date in their names)."""
    root = Path(run_dir) / FOLDER
    found = [*root.glob("results_*.json"), *root.glob("*/results_*.json")]  # older layout too
    return sorted(found, key=lambda p: p.name.removeprefix("results_"))


def read_lmeval(run_dir: str | Path) -> dict[str, Any]:
    """The run's latest lm-eval results document."""
    found = lmeval_files(run_dir)
    if not found:
        raise RaremixError(
            f"{run_dir}: no {FOLDER}/*/results_*.json: export it with `raremix export-lmeval {run_dir}`"
        )
    doc: dict[str, Any] = json.loads(found[-1].read_text(encoding="utf-8"))
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
