"""lm-eval's own code reads raremix's output and loads raremix's tasks (skipped without lm_eval)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raremix.hf.lmeval import lmeval_results, lmeval_sample, read_lmeval, write_lmeval
from raremix.hf.lmeval_tasks import write_lmeval_tasks
from raremix.tasks import make_task

lm_utils = pytest.importorskip("lm_eval.utils")


def test_lm_evals_tools_read_raremixs_results_and_samples(tmp_path: Path) -> None:
    samples = {
        "rare": [
            lmeval_sample(0, "q0", "abc", "abc", "exact_match", 1.0),
            lmeval_sample(1, "q1", "abd", "xyz", "exact_match", 0.0),
        ]
    }
    doc = lmeval_results(
        {"rare": {"acc": 0.5, "loss": 1.2}, "copy": {"acc": 0.75}},
        {"rare": 2, "copy": 4},
        model="hf",
        model_args="pretrained=models/tiny-llama",
        judge={"copy": "verifier"},
        samples=samples,
    )
    first = write_lmeval(tmp_path, doc, samples)
    second = write_lmeval(tmp_path, doc, samples)
    folder = tmp_path / "lm_eval" / lm_utils.sanitize_model_name("models/tiny-llama")
    assert first.parent == second.parent == folder and first.exists()  # earlier results kept
    files = [str(p) for p in folder.iterdir()]
    results = lm_utils.get_results_filenames(files)
    assert sorted(results) == sorted(map(str, (first, second)))
    assert lm_utils.get_latest_filename(results) == str(second)
    sample_files = lm_utils.get_sample_results_filenames(files)
    assert {lm_utils.get_file_task_name(Path(f).name) for f in sample_files} == {"rare"}
    assert lm_utils.get_file_datetime(second.name).startswith(second.name[8:-5])  # its date
    loaded = json.loads(second.read_text())
    assert loaded == read_lmeval(tmp_path)
    assert loaded["model_name"] == "models/tiny-llama"
    assert loaded["results"]["rare"]["exact_match,none"] == 0.5  # lm-eval's metric,filter key
    assert loaded["results"]["copy"]["acc,none"] == 0.75  # a verifier's score is not exact match
    # lm-eval's task hash: sha256 over the samples' doc, prompt and target hashes
    joined = "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples["rare"])
    assert loaded["task_hashes"] == {"rare": lm_utils.hash_string(joined)}
    table = lm_utils.make_table(loaded)
    assert "exact_match" in table and "|rare " in table.replace("|  ", "|")
    row = next(line for line in table.splitlines() if "exact_match" in line)
    cells = [c.strip() for c in row.split("|")]
    assert float(cells[7]) == 0.5 and float(cells[9]) == 0.5  # value, then lm-eval's stderr


def test_lm_evals_task_manager_loads_and_scores_raremixs_tasks(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager, get_task_dict

    names = write_lmeval_tasks(
        tmp_path / "tasks", {"copy": 3}, rows={"rare": (["q0\n", "q1\n"], ["abc", "abd"])}, n=8
    )
    assert names == ["copy", "rare"]
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    assert {"copy", "rare", "raremix"} <= set(manager.all_tasks)
    tasks = get_task_dict(["raremix"], manager)
    flat = {t.config.task: t for t in _leaves(tasks)}
    copy, rare = flat["copy"], flat["rare"]
    docs = list(copy.test_docs())
    assert len(docs) == 8
    assert copy.doc_to_text(docs[0]) == docs[0]["prompt"] and docs[0]["prompt"].endswith(
        docs[0]["input"] + "\n"
    )
    task = make_task("copy", 3)
    right = task.generate([0], 0, "train")  # any valid answer is right: the verifier judges
    assert task.verify([docs[0]["input"]], [docs[0]["response"]])[0]
    assert copy.process_results(docs[0], [" " + docs[0]["response"] + " "]) == {"acc": 1.0}
    assert copy.process_results(docs[0], [docs[0]["response"] + "x"]) == {"acc": 0.0}
    assert right.answers  # the task generates
    rare_docs = list(rare.test_docs())
    assert [rare.doc_to_target(d) for d in rare_docs] == ["abc", "abd"]
    assert rare.process_results(rare_docs[0], ["abc\n"]) == {"exact_match": 1.0}
    assert rare.process_results(rare_docs[1], ["abc"]) == {"exact_match": 0.0}


def _leaves(tasks: dict) -> list:
    out = []
    for value in tasks.values():
        out.extend(_leaves(value) if isinstance(value, dict) else [value])
    return out
