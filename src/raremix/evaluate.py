"""Per-task evaluation: answer-token loss and exact-match / verifier accuracy.

For structured tasks, exact match under greedy decoding equals "every answer token is
the argmax given the correct prefix", so one teacher-forced forward pass scores them.
Open tasks have many valid answers: the model decodes greedily and the task's verifier
judges what it wrote. Beside each accuracy go the evidence it rests on: `n`, the number of
held-out examples, and the baselines of that same set (`raremix.tasks.baselines`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from raremix.data import EvalSet
from raremix.loss import answer_loss as answer_loss  # re-exported: its home is raremix.loss
from raremix.loss import exact_match
from raremix.tokens import Tokenizer


@torch.no_grad()
def greedy_answers(
    model: torch.nn.Module,
    tok: Tokenizer,
    prefixes: list[list[int]],
    inputs: list[str],
    max_new: int,
    device: torch.device,
) -> list[str]:
    """Decode answers greedily, batching prompts of equal length (learned positions forbid left-padding)."""
    prompts = [p + tok.encode_text(i) + [tok.sep_id] for p, i in zip(prefixes, inputs, strict=True)]
    out: list[str] = [""] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for rows in by_len.values():
        idx = torch.tensor([prompts[r] for r in rows], device=device)  # (b, T0)
        done = torch.zeros(len(rows), dtype=torch.bool, device=device)
        gen = []
        for _ in range(max_new + 1):
            nxt = model(idx)[:, -1].argmax(-1)  # (b,)
            gen.append(nxt)
            done |= nxt == tok.eos_id
            idx = torch.cat([idx, nxt[:, None]], dim=1)  # (b, T+1)
            if bool(done.all()):
                break
        ids = torch.stack(gen, dim=1).tolist()  # (b, steps)
        for r, seq in zip(rows, ids, strict=True):
            out[r] = tok.decode(seq)
    return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, sets: Mapping[str, EvalSet], tok: Tokenizer, device: torch.device
) -> dict[str, dict[str, float]]:
    """{task: {"acc", "loss", "n", "chance", "majority"[, "heuristic"]}} on each task's
    held-out set: the model's scores, the set's size and its baselines."""
    was_training = model.training
    model.eval()
    results: dict[str, dict[str, float]] = {}
    for name, es in sets.items():
        idx, targets = es.batch.idx.to(device), es.batch.targets.to(device)
        logits = model(idx)  # (B, T, V)
        loss = answer_loss(logits, targets).item()
        if es.task.kind == "open":
            outs = greedy_answers(
                model, tok, es.prefixes, es.inputs, es.task.max_answer_len, device
            )
            acc = float(es.task.verify(es.inputs, outs).mean())
        else:
            acc = exact_match(logits, targets).float().mean().item()
        results[name] = {"acc": acc, "loss": loss, "n": float(len(es)), **es.baselines}
    model.train(was_training)
    return results
