"""lm-eval itself runs raremix's generated tasks on a model `raremix hf-train` fine-tuned,
and agrees with raremix's own evaluation of it, sample by sample (skipped without lm_eval).

The run learns a common task ('yes' to every prompt: all right) and not a rare one
(reverse three letters: mostly wrong, with varied wrong answers), so agreeing on every
generated response and on both scores is a check that can fail, not agreement at 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
lm_eval = pytest.importorskip("lm_eval")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from lm_eval import utils as lm_utils  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402
from test_hf_train import CHARS, tagged_config, tagged_rows  # noqa: E402

from raremix.hf import load_hf_config, train_hf  # noqa: E402
from raremix.hf.lmeval import read_lmeval  # noqa: E402
from raremix.hf.lmeval_tasks import write_lmeval_tasks  # noqa: E402
from raremix.hf.tiny import char_tokenizer, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers.utils import logging

    logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("lmevalrun")
    model = tiny_model("gpt2", char_tokenizer(CHARS), root / "gpt2")
    run = root / "run"
    train_hf(load_hf_config(data=tagged_config(model)), run, table=tagged_rows())
    return run


def raremix_samples(run: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """The run's samples files, found by lm-eval's own helpers: {task: {doc_id: row}}."""
    files = [str(p) for p in (run / "lm_eval").glob("*/*")]
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for name in lm_utils.get_sample_results_filenames(files):
        task = lm_utils.get_file_task_name(Path(name).name)
        rows = [json.loads(line) for line in Path(name).read_text().splitlines()]
        out[task] = {r["doc_id"]: r for r in rows}
    return out


def test_hf_train_writes_samples_lm_eval_reads(run_dir: Path) -> None:
    doc = read_lmeval(run_dir)
    samples = raremix_samples(run_dir)
    assert set(samples) == set(doc["results"]) == {"const", "rev"}
    for task, rows in samples.items():
        assert len(rows) == doc["n-samples"][task]["effective"] > 1
        mean = sum(r["exact_match"] for r in rows.values()) / len(rows)
        assert mean == doc["results"][task]["exact_match,none"]
        joined = "".join(
            rows[i]["doc_hash"] + rows[i]["prompt_hash"] + rows[i]["target_hash"]
            for i in sorted(rows)
        )
        assert doc["task_hashes"][task] == lm_utils.hash_string(joined)
        assert all(r["filtered_resps"] == [r["resps"][0][0]] for r in rows.values())
    assert doc["results"]["const"]["exact_match,none"] == 1.0
    assert doc["results"]["rev"]["exact_match,none"] < 0.5


def test_lm_eval_runs_raremixs_tasks_and_agrees_with_raremix(run_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    ours = raremix_samples(run_dir)
    rows = {
        task: (
            [r["doc"]["prompt"] for _, r in sorted(got.items())],
            [r["target"] for _, r in sorted(got.items())],
        )
        for task, got in ours.items()
    }
    model = run_dir / "model"
    tasks = tmp_path / "tasks"
    write_lmeval_tasks(tasks, rows=rows, tokenizer=AutoTokenizer.from_pretrained(model))
    out = lm_eval.simple_evaluate(
        model="hf",
        # raremix starts every prompt with bos; lm-eval adds it only when told
        model_args=f"pretrained={model},tokenizer={model},add_bos_token=True",
        tasks=["raremix"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
        device="cpu",
        batch_size=8,
        log_samples=True,
    )
    assert out is not None
    doc = read_lmeval(run_dir)
    for task, got in ours.items():
        theirs = {s["doc_id"]: s for s in out["samples"][task]}
        assert sorted(theirs) == sorted(got)
        for i, mine in got.items():
            # the same prompt, target and document, hashed as lm-eval hashes them
            assert {k: theirs[i][k] for k in ("doc_hash", "prompt_hash", "target_hash")} == {
                k: mine[k] for k in ("doc_hash", "prompt_hash", "target_hash")
            }
            # the same greedy response, judged the same (stripped: lm-eval keeps the
            # spaces raremix's decode may differ in; both judges strip them)
            assert theirs[i]["filtered_resps"][0].strip() == mine["resps"][0][0].strip()
            assert theirs[i]["exact_match"] == mine["exact_match"]
        result = out["results"][task]
        assert result["exact_match,none"] == doc["results"][task]["exact_match,none"]
        assert result["exact_match_stderr,none"] == pytest.approx(
            doc["results"][task]["exact_match_stderr,none"]
        )
    # the trained model answers 'yes' to everything, so the per-sample check above is
    # weak here; the next test compares varied responses
    assert {r["resps"][0][0] for r in ours["rev"].values()} == {"yes"}


def test_lm_eval_and_raremix_generate_the_same_varied_responses(tmp_path: Path) -> None:
    """An untrained model's varied (random) answers to a synthetic task, from raremix's
    evaluation and from lm-eval running raremix's task folder: equal one by one, and so
    the verifier's `acc` too (at 0, as a random model scores: the responses are the check)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raremix.config import TaskSpec
    from raremix.hf.data import SynthExamples
    from raremix.hf.encode import Encoder
    from raremix.hf.evaluate import evaluate_hf

    model_dir = tiny_model("gpt2", char_tokenizer(CHARS), tmp_path / "gpt2", seed=1)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():  # a fresh tiny model answers one token to everything:
        for w in model.parameters():  # sharper weights make its answers depend on the prompt
            if w.dim() == 2:
                w.mul_(20.0)
    model.save_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    items = SynthExamples({"copy": TaskSpec(complexity=3)}, "instruction", 0).eval_items(12)
    outputs: dict[str, list[str]] = {}
    mine = evaluate_hf(
        model,
        Encoder(tok, 128),
        items,
        torch.device("cpu"),
        64,
        outputs,
    )
    tasks = tmp_path / "tasks"
    write_lmeval_tasks(tasks, {"copy": 3}, n=12, tokenizer=tok)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},tokenizer={model_dir},add_bos_token=True",
        tasks=["copy"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
        device="cpu",
        batch_size=4,
        log_samples=True,
    )
    assert out is not None
    theirs = sorted(out["samples"]["copy"], key=lambda s: s["doc_id"])
    assert [s["doc"]["prompt"] for s in theirs] == items["copy"].prompts
    responses = [s["filtered_resps"][0].strip() for s in theirs]
    assert responses == [o.strip() for o in outputs["copy"]]
    assert len(set(responses)) > 3  # varied: agreement is not agreement on a constant
    assert out["results"]["copy"]["acc,none"] == mine["copy"]["acc"]
