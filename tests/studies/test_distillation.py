"""The distillation study: its losses, teacher labelling, the shared teacher cache, the quick study."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from cli_runner import cli
from raremix.config import load_config
from raremix.evaluate import answer_loss
from raremix.results.rows import load_rows
from raremix.studies.distillation.run import (
    DistillConfig,
    StudentConfig,
    distill_loss,
    margin_loss,
    run_distill,
    soft_target_loss,
)
from raremix.studies.distillation.teacher import TeacherCache, label_with_teacher, true_labelled
from raremix.studies.distillation.verdict import arm_summary, crossings
from raremix.tasks import make_task
from raremix.tokens import Tokenizer

V, K = 12, 4


def test_soft_loss_is_cross_entropy_for_a_one_hot_teacher_and_least_at_the_teacher() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, V, generator=gen)  # (B, T, V)
    targets = torch.randint(0, V, (3, 5), generator=gen)
    targets[:, :2] = -100  # prompt positions
    mask = targets != -100
    ids = torch.zeros(3, 5, K, dtype=torch.long)
    ids[..., 0] = targets.clamp(min=0)
    one_hot = torch.full((3, 5, K), -torch.inf)
    one_hot[..., 0] = 0.0
    one_hot[~mask] = -torch.inf  # off the answers the teacher has no logits at all
    soft = soft_target_loss(logits.requires_grad_(), ids, one_hot, mask, T=1.0)
    assert soft.item() == pytest.approx(answer_loss(logits, targets).item(), rel=1e-5)
    soft.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert (logits.grad[~mask] == 0).all()

    # a teacher whose top-k holds all its mass: the loss is least at the teacher's own logits
    teacher = torch.randn(3, 5, V, generator=gen)
    teacher[..., K:] = -1e4
    t_logits, t_ids = teacher.topk(K, dim=-1)
    t_logits[~mask] = -torch.inf
    at_teacher = soft_target_loss(teacher, t_ids, t_logits, mask, T=2.0)
    for scale in (0.5, 2.0):
        assert soft_target_loss(teacher * scale, t_ids, t_logits, mask, T=2.0) > at_teacher
    p = torch.softmax(t_logits / 2, -1)
    entropy = -(p * p.log()).sum(-1)[mask].mean() * 4  # T² · H(teacher): what KL = 0 leaves
    assert at_teacher.item() == pytest.approx(entropy.item(), rel=1e-4)


def test_margin_loss_matches_logit_gaps_and_ignores_masked_positions() -> None:
    gen = torch.Generator().manual_seed(1)
    teacher = torch.randn(2, 4, V, generator=gen)
    t_logits, t_ids = teacher.topk(K, dim=-1)
    mask = torch.tensor([[False, True, True, True], [False, False, True, True]])
    shifted = teacher + torch.randn(2, 4, 1, generator=gen)  # same gaps, other offsets
    assert margin_loss(shifted, t_ids, t_logits, mask).item() == pytest.approx(0.0, abs=1e-10)
    wrong = shifted.clone()
    wrong[0, 0] = torch.randn(V, generator=gen)  # a masked position: ignored
    assert margin_loss(wrong, t_ids, t_logits, mask).item() == pytest.approx(0.0, abs=1e-10)
    wrong[1, 3] = torch.randn(V, generator=gen)
    assert margin_loss(wrong, t_ids, t_logits, mask).item() > 0.01
    t_logits[~mask] = -torch.inf  # off the answers the teacher has no logits
    wrong.requires_grad_()
    margin_loss(wrong, t_ids, t_logits, mask).backward()
    assert wrong.grad is not None and torch.isfinite(wrong.grad).all()
    assert (wrong.grad[~mask] == 0).all() and wrong.grad[1, 3].abs().sum() > 0
    targets = torch.where(mask, t_ids[..., 0], -100)
    mixed = StudentConfig(loss="margin", hard_weight=0.25)
    want = 0.25 * answer_loss(wrong, targets) + 0.75 * margin_loss(wrong, t_ids, t_logits, mask)
    assert distill_loss(wrong, targets, t_ids, t_logits, mixed).item() == pytest.approx(want.item())


class Oracle(torch.nn.Module):
    """A 'teacher' that knows the answers: logits peak at the true next token of each sequence
    (looked up by its prompt), so greedy decoding must reproduce the true encoding."""

    def __init__(self, batch: Any, vocab: int) -> None:
        super().__init__()
        self.idx, self.targets, self.vocab = batch.idx, batch.targets, vocab

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        out = torch.zeros(idx.shape[0], t, self.vocab)
        nxt = self.targets[:, :t].clamp(min=0)  # rows are in the same order as the prompts
        return out.scatter(-1, nxt[..., None], 5.0)


def test_greedy_labels_of_an_oracle_teacher_are_the_true_encoding() -> None:
    tok, task = Tokenizer(), make_task("successor", 4)
    ex = task.generate(np.arange(40), seed=0, split="train")
    prefix = tok.prefix(task)
    block = len(prefix) + task.max_input_len + task.max_answer_len + 2
    truth = true_labelled(tok, prefix, ex.inputs, ex.answers, K, block)
    prompts, lengths = tok.encode_prompts([prefix] * 40, ex.inputs)
    oracle = Oracle(tok.encode([prefix] * 40, ex.inputs, ex.answers), tok.size)
    got = label_with_teacher(
        oracle,
        prompts,
        lengths,
        max_new=task.max_answer_len,
        top_k=K,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        block_size=block,
    )
    assert torch.equal(got["idx"], truth["idx"]) and torch.equal(got["targets"], truth["targets"])
    on = truth["targets"] != -100
    assert torch.equal(got["topk_ids"][..., 0][on], truth["targets"][on])  # top-1 = the label
    assert torch.isinf(got["topk_logits"][~on]).all()  # nothing outside the answers


def tiny_distill(**student: Any) -> dict[str, Any]:
    teacher = {
        "seed": 0,
        "steps": 40,
        "batch_size": 32,
        "eval_every": 20,
        "eval_examples": 32,
        "checkpoint_every": 20,
        "threads": 1,
        "tasks": {"successor": {"complexity": 2}},
        "model": {"size": None, "n_layer": 1, "d_model": 24, "n_head": 2},
        "mixture": {"sources": [{"name": "successor", "size": 64}]},
    }
    stud = {
        "model": {"size": None, "n_layer": 1, "d_model": 16, "n_head": 2},
        "steps": 30,
        "batch_size": 32,
        "eval_every": 15,
        "pool": 100,
        **student,
    }
    return {"seed": 0, "teacher": teacher, "student": stud, "top_k": 4, "label_chunk": 64}


def _ensure(root: str, config: dict[str, Any]) -> bool:
    cfg = DistillConfig(**config)
    cache = TeacherCache(Path(root), cfg.teacher_config(), cfg.top_k, cfg.label_chunk)
    cache.ensure()
    cache.labels("successor", 100)
    return cache.trained_here


@pytest.mark.slow
def test_two_processes_share_one_teacher_and_its_labels(tmp_path: Path) -> None:
    with mp.get_context("spawn").Pool(2) as pool:
        trained = pool.starmap(_ensure, [(str(tmp_path), tiny_distill())] * 2)
    assert sorted(trained) == [False, True]  # one trained it; the other waited and reused it
    (teacher,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    chunks = sorted((teacher / "labels").glob("*.safetensors"))
    assert [c.name for c in chunks] == [
        "successor.k4.n64.00000.safetensors",
        "successor.k4.n64.00001.safetensors",
    ]
    assert not list(teacher.rglob(".*.tmp"))  # every file was renamed into place
    stamp = [c.stat().st_mtime_ns for c in chunks]
    cfg = DistillConfig(**tiny_distill())
    cache = TeacherCache(tmp_path, cfg.teacher_config(), 4, 64)
    first, more = cache.labels("successor", 100), cache.labels("successor", 150)
    assert torch.equal(
        more["targets"][:100], first["targets"]
    )  # a pool is a prefix of a larger one
    assert [c.stat().st_mtime_ns for c in chunks] == stamp and len(
        list(chunks[0].parent.iterdir())
    ) == 3
    assert not cache.trained_here


@pytest.mark.slow
def test_run_distill_writes_teacher_and_student_rows(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    facts = run_distill({**tiny_distill(), "role": "teacher"}, runs / "t")
    (teacher_dir,) = (tmp_path / "teachers").iterdir()
    assert load_rows(runs / "t" / "metrics.jsonl") == [
        {**r, "run": "t"} for r in load_rows(teacher_dir / "metrics.jsonl")
    ]
    assert facts["role"] == "teacher" and facts["params"] > facts.get("pool", 0)
    for loss in ("hard", "soft", "margin"):
        out = run_distill(tiny_distill(loss=loss, hard_weight=0.5), runs / loss)
        rows = load_rows(runs / loss / "metrics.jsonl")
        acc = [r for r in rows if r["metric"] == "acc" and r["task"] == "successor"]
        assert [r["step"] for r in acc] == [0, 15, 30]
        assert out["train_examples"] == 64 + 100 and out["distill_loss"] == loss
        assert out["params"] < facts["params"]
    cfg = load_config(data=tiny_distill()["teacher"])
    assert (teacher_dir / "config.yaml").exists() and teacher_dir.name == cfg.hash()


def test_a_teacher_needs_a_finite_labelled_set() -> None:
    config = tiny_distill()
    config["teacher"]["mixture"]["sources"][0].pop("size")
    with pytest.raises(Exception, match="has no size"):
        DistillConfig(**config)


@pytest.mark.slow
def test_quick_study_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "distill"
    res = cli(capsys, monkeypatch, "study", "run", "distillation", "--quick", "--out", str(out))
    assert res.code == 0 and "0 failed" in res.out, res.out + res.err
    verdict = json.loads((out / "analysis" / "verdict.json").read_text())
    # 2 vs 2 seeds: the exact two-sided floor is 1/3, so no student can pass its teacher
    assert verdict["finding"] == "inconclusive"
    calls = {c["name"]: c["call"] for c in verdict["comparisons"]}
    assert {"mean: hard · 256 − teacher", "add: labelled only − teacher"} <= set(calls)
    assert len(calls) == 4 * 3  # (mean + 3 tasks) × 3 student arms
    assert set(calls.values()) <= {"indistinguishable", "equivalent"}
    arms = [r[0] for r in verdict["table"]["rows"]]
    assert arms[0] == "teacher" and "student · labelled only" in arms and "student · hard" in arms
    assert all(r[-1] == 2 for r in verdict["table"]["rows"])  # two seeds per arm
    assert len(list((out / "teachers").iterdir())) == 2  # one teacher per seed, shared
    assert (out / "analysis" / "figures" / "distillation.png").stat().st_size > 5_000
    assert [o["id"] for o in verdict["outcomes"]][:1] == ["hard-16k-passes-teacher"]


def _scores(arms: dict[tuple[str, str, int], list[float]]) -> pd.DataFrame:
    rows = [
        {
            "run_id": f"{role}-{loss}-{pool}-{seed}",
            "seed": seed,
            "task": "mean",
            "role": role,
            "loss": loss,
            "pool": pool,
            "acc": acc,
        }
        for (role, loss, pool), accs in arms.items()
        for seed, acc in enumerate(accs)
    ]
    return pd.DataFrame(rows)


def test_a_student_passes_only_on_significance_and_ties_only_by_equivalence() -> None:
    teacher = [0.50, 0.51, 0.49, 0.50, 0.52, 0.48, 0.50]
    table = _scores(
        {
            ("teacher", "", 0): teacher,
            ("student", "labelled only", 0): [a - 0.3 for a in teacher],
            ("student", "hard", 1000): [a + 0.002 for a in teacher],  # ties: inside ±0.05
            ("student", "hard", 4000): [a + 0.2 for a in teacher],  # passes
            ("student", "soft", 4000): [0.2, 0.9, 0.4, 0.8, 0.6, 0.3, 0.7],  # +0.05, wide: neither
        }
    )
    cross, judged = crossings(arm_summary(table), table)
    by_loss = cross.set_index("loss")
    assert by_loss.loc["hard", "passes_at"] == 4000 and by_loss.loc["hard", "ties_at"] == 1000
    assert np.isnan(by_loss.loc["soft", "passes_at"]) and np.isnan(by_loss.loc["soft", "ties_at"])
    calls = {j.name: j.call for j in judged}
    assert calls == {
        "mean: hard · 1k − teacher": "equivalent",
        "mean: hard · 4k − teacher": "greater",
        "mean: labelled only − teacher": "less",
        "mean: soft · 4k − teacher": "indistinguishable",
    }
