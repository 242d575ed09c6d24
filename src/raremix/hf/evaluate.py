"""Per-task evaluation of a Hugging Face causal LM: greedy generation judged by the task's
verifier (synthetic tasks) or exact match (tagged data), and the teacher-forced loss on
the reference responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from raremix.evaluate import answer_loss
from raremix.hf.data import EvalItems
from raremix.hf.encode import Encoder, pad_id
from raremix.probes import shift_labels


@torch.no_grad()
def generate(
    model: torch.nn.Module, tok: Any, ids: list[list[int]], max_new: int, device: torch.device
) -> list[str]:
    """Greedy continuations of the prompts `ids` up to eos (left-padded batch, one
    `generate` call; the prompts as `Encoder.prompt_tokens` makes them)."""
    width, pad = max(len(i) for i in ids), pad_id(tok)
    batch = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=device)  # (B, T)
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
    out = model.generate(  # type: ignore[operator]
        input_ids=batch,
        attention_mask=mask,
        max_new_tokens=max_new,
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=tok.eos_token_id,
    )
    texts = []
    for row in out[:, width:].tolist():  # (B, new)
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        texts.append(tok.decode(row, skip_special_tokens=True))
    return texts


@torch.no_grad()
def evaluate_hf(
    model: torch.nn.Module,
    encoder: Encoder,
    items: Mapping[str, EvalItems],
    device: torch.device,
    max_new_tokens: int,
    outputs: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """{task: {"acc", "loss", "n"[, baselines]}} on each task's held-out items: the model's
    scores, how many items, and a synthetic task's baselines on them. `outputs`, when
    given, receives each task's generated responses (for lm-eval's samples files)."""
    was_training = model.training
    model.eval()
    results: dict[str, dict[str, float]] = {}
    tok = encoder.tok
    for name, it in items.items():
        examples = it.examples()
        batch = encoder.encode(examples)
        ids, mask = batch.ids.to(device), batch.mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
        loss = answer_loss(logits, shift_labels(batch.labels).to(device)).item()
        longest = max(len(r) for r in tok(it.responses, add_special_tokens=False)["input_ids"])
        prompts = [encoder.prompt_tokens(ex) for ex in examples]
        outs = generate(model, tok, prompts, min(max_new_tokens, longest + 2), device)
        acc = float(it.judge(outs).mean())
        if outputs is not None:
            outputs[name] = outs
        results[name] = {"acc": acc, "loss": loss, "n": float(len(it)), **it.baselines}
    model.train(was_training)
    return results
