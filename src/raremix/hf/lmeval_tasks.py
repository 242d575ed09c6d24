"""raremix's tasks as lm-evaluation-harness tasks: a folder lm-eval's TaskManager loads.

    write_lmeval_tasks("lm_tasks/", {"copy": 3, "successor": None}, n=200)
    lm_eval --model hf --model_args pretrained=runs/ft/model,add_bos_token=True \\
        --include_path lm_tasks --tasks raremix --output_path runs/ft/lm_eval --log_samples

For each task of raremix's registry (`raremix.tasks.make_task`), or each task of
task-tagged rows, the folder holds `<task>.jsonl` (the held-out items: prompt, response,
and for a synthetic task its name, complexity and input), `<task>.yaml` (a
`generate_until` task reading that file through `datasets`' packaged `json` builder:
nothing is downloaded), `utils.py` (the scorer) and `raremix.yaml` (the group of them).
The prompts, references and scores are those `raremix hf-train` evaluates: greedy
generation until eos only (no other stop sequence), then the task's verifier (`acc`) or
whitespace-stripped exact match (`exact_match`). Given the run's `tokenizer`, each task
generates at most as many tokens as raremix does (its longest reference + 2), so lm-eval
reproduces raremix's responses and scores; `add_bos_token=True` gives the prompts the bos
raremix starts them with. The YAMLs name their data files by absolute path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from raremix.errors import RaremixError
from raremix.tasks import EVAL_SEED, heldout_set, make_task

GROUP = "raremix"
UTILS = '''"""Scorers for raremix's lm-eval tasks (written by raremix.hf.lmeval_tasks)."""

from functools import lru_cache


@lru_cache(maxsize=None)
def _task(name, complexity):
    from raremix.tasks import make_task

    return make_task(name, complexity)


def verify(doc, results):
    """A synthetic task's verifier: any correct answer counts (lm-eval metric `acc`)."""
    ok = _task(doc["task"], doc["complexity"]).verify([doc["input"]], [results[0].strip()])
    return {"acc": float(bool(ok[0]))}


def exact_match(doc, results):
    """Whitespace-stripped exact match, as raremix scores task-tagged rows."""
    return {"exact_match": float(results[0].strip() == doc["response"].strip())}
'''


class _Function(str):
    """A YAML `!function utils.NAME` tag, as lm-eval's task loader reads it."""


class _Dumper(yaml.SafeDumper):
    """Writes `_Function` values with their tag (and nothing else differently)."""


_Dumper.add_representer(_Function, lambda d, v: d.represent_scalar("!function", str(v)))


def write_lmeval_tasks(
    out: str | Path,
    tasks: Mapping[str, int | None] | None = None,
    *,
    rows: Mapping[str, tuple[list[str], list[str]]] | None = None,
    n: int = 200,
    framing: str = "instruction",
    max_gen_toks: int = 64,
    tokenizer: Any = None,
) -> list[str]:
    """Write lm-eval task files for synthetic `tasks` ({name: complexity or None}) and/or
    task-tagged `rows` ({task: (prompts, responses)}) into `out`; return the task names.

    Synthetic items are the task's first `n` distinct held-out inputs (`heldout_set` at
    raremix's evaluation seed) after the `framing` text, as `raremix hf-train` makes them.
    With the run's `tokenizer`, a task generates at most `max_gen_toks` and at most its
    longest reference + 2 tokens, raremix's own cap.
    """
    from raremix.hf.data import PROMPT_END, framing_text  # torch: only on use

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for name, complexity in (tasks or {}).items():
        task = make_task(name, complexity)
        held = heldout_set(task, n, EVAL_SEED)
        prefix = framing_text(task, framing)
        docs = [
            {
                "prompt": prefix + x + PROMPT_END,
                "response": a,
                "task": name,
                "complexity": complexity,
                "input": x,
            }
            for x, a in zip(held.inputs, held.answers, strict=True)
        ]
        _write_task(folder, name, docs, "verify", "acc", _cap(docs, max_gen_toks, tokenizer))
        written.append(name)
    for name, (prompts, responses) in (rows or {}).items():
        if name in written:
            raise RaremixError(
                f"task '{name}' is both a synthetic task and tagged rows: rename one"
            )
        docs = [
            {"prompt": p, "response": r} for p, r in zip(prompts[:n], responses[:n], strict=True)
        ]
        cap = _cap(docs, max_gen_toks, tokenizer)
        _write_task(folder, name, docs, "exact_match", "exact_match", cap)
        written.append(name)
    if not written:
        raise RaremixError("lm-eval tasks: no tasks given: pass synthetic tasks or tagged rows")
    (folder / "utils.py").write_text(UTILS)
    (folder / f"{GROUP}.yaml").write_text(yaml.safe_dump({"group": GROUP, "task": written}))
    return written


def _cap(docs: list[dict], max_gen_toks: int, tokenizer: Any) -> int:
    """raremix's generation cap (`evaluate_hf`): the longest reference in tokens + 2."""
    if tokenizer is None or not docs:
        return max_gen_toks
    lengths = tokenizer([d["response"] for d in docs], add_special_tokens=False)["input_ids"]
    return min(max_gen_toks, max(len(ids) for ids in lengths) + 2)


def _write_task(
    folder: Path, name: str, docs: list[dict], scorer: str, metric: str, max_gen_toks: int
) -> None:
    data = (folder / f"{name}.jsonl").resolve()
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{response}}",
        # raremix generates until eos only (lm-eval adds it): an answer followed by more
        # text is wrong there, so no "\n" stop here either
        "generation_kwargs": {
            "until": [],
            "do_sample": False,
            "max_gen_toks": max_gen_toks,
        },
        "process_results": _Function(f"utils.{scorer}"),
        "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "source": "raremix"},
    }
    (folder / f"{name}.yaml").write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False))
