"""Real fine-tuning: chat templates (one BOS, every assistant turn), explicit truncation,
LoRA, gradient accumulation, bf16 autocast on CPU, gradient checkpointing, exact resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

from raremix.callbacks import Callback
from raremix.errors import RaremixError
from raremix.hf import load_hf_config, train_hf
from raremix.hf.encode import Encoder, Example
from raremix.hf.tiny import char_tokenizer, tiny_model
from raremix.results.rows import load_rows

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz :<>[]/\n"
# Llama-2's shape: the template writes the BOS itself and ends each reply with eos
LLAMA2 = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[inst] {{ m['content'] }} "
    "[/inst]{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
MARKED = LLAMA2.replace(
    "{% else %} {{ m['content'] }}{{ eos_token }}",
    "{% else %}{% generation %} {{ m['content'] }}{{ eos_token }}{% endgeneration %}",
)
CHAT = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "abc"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": "xyz"},
]


@pytest.fixture(scope="module")
def tok() -> Any:
    return char_tokenizer(CHARS)


def trained_text(enc: Encoder, ex: Example) -> tuple[list[int], str]:
    ids, trained = enc.tokens(ex)
    return ids, enc.tok.decode([i for i, t in zip(ids, trained, strict=True) if t])


def test_a_template_with_bos_token_gives_one_bos_and_trains_every_assistant_turn(tok: Any) -> None:
    ex = Example("", "xyz", CHAT)
    ids, text = trained_text(Encoder(tok, 256, template=LLAMA2), ex)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert text == " abc<eos> xyz<eos>"  # both replies and their end tokens, nothing else
    _, last = trained_text(Encoder(tok, 256, template=LLAMA2, assistant_turns="last"), ex)
    assert last == " xyz<eos>"
    # transformers' own assistant mask ({% generation %}) marks the very same tokens
    for turns in ("all", "last"):
        plain = Encoder(tok, 256, template=LLAMA2, assistant_turns=turns).tokens(ex)  # type: ignore[arg-type]
        assert Encoder(tok, 256, template=MARKED, assistant_turns=turns).tokens(ex) == plain  # type: ignore[arg-type]
    prompt = Encoder(tok, 256, template=LLAMA2).prompt_tokens(ex)
    assert prompt == ids[: len(prompt)] and tok.decode(prompt).endswith("[/inst]")
    assert prompt.count(tok.bos_token_id) == 1


def test_plain_chat_trains_every_assistant_turn_after_one_bos(tok: Any) -> None:
    ids, text = trained_text(Encoder(tok, 256), Example("", "xyz", CHAT))
    assert ids.count(tok.bos_token_id) == 1
    assert text == "abcxyz<eos>"
    assert tok.decode(ids, skip_special_tokens=True).startswith("user: hi\nassistant:abc\n")


def test_truncation_is_on_a_declared_side_counted_and_never_silent(tok: Any) -> None:
    long = Example("p" * 30, "answer")  # 1 + 30 + 6 + 1 = 38 tokens
    short = Example("p", "ok")
    left = Encoder(tok, 12).encode([long, short])
    row = left.ids[0].tolist()
    assert row[0] == tok.bos_token_id and row[-1] == tok.eos_token_id  # BOS and the response kept
    assert tok.decode(row, skip_special_tokens=True) == "ppppanswer"
    assert (left.cuts.truncated, left.cuts.response_cut, left.cuts.lost) == (1, 0, 0)
    right = Encoder(tok, 12, side="right").encode([long, short])
    assert (right.cuts.truncated, right.cuts.response_cut, right.cuts.lost) == (1, 1, 1)
    assert (right.labels[0] != -100).sum() == 0  # nothing of it learned: and it is counted
    with pytest.raises(RaremixError, match=r"loses its whole response .* lost_response: count"):
        Encoder(tok, 12, side="right", lost_response="error").encode([long])


def chat_rows(path: Path) -> Path:
    """A long-tailed chat set: a common one-word task, a rare two-turn task."""
    lines = []
    for i in range(60):
        w = "abcdefghij"[i % 10] + "abcdefghij"[(i // 10) % 10]
        lines.append(
            {
                "kind": "greet",
                "messages": [
                    {"role": "user", "content": f"hi {w}"},
                    {"role": "assistant", "content": "hello"},
                ],
            }
        )
    for i in range(15):
        w = "abcdefghij"[i % 10] + "abcdefghij"[(i * 3) % 10] + "x"
        lines.append(
            {
                "kind": "rev",
                "messages": [
                    {"role": "user", "content": w},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "rev"},
                    {"role": "assistant", "content": w[::-1]},
                ],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def lora_config(model: Path, data: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": str(model),
        "steps": 8,
        "batch_size": 8,
        "eval_every": 4,
        "checkpoint_every": 4,
        "eval_examples": 4,
        "threads": 1,
        "max_length": 24,
        "max_new_tokens": 8,
        "optim": {"lr": 1e-2, "warmup_steps": 2},
        "heldout": 0.2,
        "rare": ["rev"],
        "data": {"path": str(data), "task": "kind", "messages": "messages"},
        "mixture": {"sources": [{"name": "greet"}, {"name": "rev"}]},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "grad_accum": 2,
        "autocast": "bfloat16",
        "gradient_checkpointing": True,
        "probes": {"batch": 4, "probes": ["interference", "entropy"]},
    }
    cfg.update(over)
    return cfg


class Interrupt(Callback):
    def on_step_end(self, state: Any) -> None:
        if state.step == 6:
            raise KeyboardInterrupt


class Seen(Callback):
    """What the run trains: whether its blocks recompute activations, its weights' dtypes."""

    def on_start(self, state: Any) -> None:
        self.checkpointing = any(
            getattr(m, "gradient_checkpointing", False) for m in state.model.modules()
        )
        self.dtypes = {str(p.dtype) for p in state.model.parameters()}


@pytest.mark.slow
def test_lora_chat_run_with_accumulation_bf16_and_checkpointing_resumes_bit_exactly(
    tok: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    tok.chat_template = LLAMA2
    model = tiny_model("llama", tok, tmp_path / "llama")
    cfg = load_hf_config(data=lora_config(model, chat_rows(tmp_path / "chat.jsonl")))
    seen = Seen()
    whole = train_hf(cfg, tmp_path / "whole" / "run", callbacks=[seen])
    assert seen.checkpointing and seen.dtypes == {"torch.float32"}
    killed = tmp_path / "killed" / "run"
    with pytest.raises(KeyboardInterrupt):  # killed at step 6; the checkpoint is at 4
        train_hf(cfg, killed, callbacks=[Interrupt()])
    resumed = train_hf(cfg, killed)
    want, got = (
        load_rows(tmp_path / "whole" / "run" / "metrics.jsonl"),
        load_rows(killed / "metrics.jsonl"),
    )
    assert got == want  # adapters and optimizer state restored: every row bit for bit
    assert {"probe/interference", "probe/entropy", "acc", "loss"} <= {r["metric"] for r in want}

    facts = json.loads((killed / "summary.json").read_text())["facts"]
    timing = ("train_seconds", "probe_seconds", "lm_eval")  # when and where, not what
    same = {k: v for k, v in whole.facts.items() if k not in timing}
    assert {k: v for k, v in facts.items() if k not in timing} == same
    assert {k: v for k, v in resumed.facts.items() if k not in timing} == same
    assert 0 < facts["trainable_params"] < facts["params"] / 5  # only the adapters train
    # the 2-turn rare chats (about 30 tokens) are cut on the left to 24 and counted
    assert facts["truncated"] > 0 and facts["truncated_lost"] == 0
    assert facts["eval_truncated"] >= 1
    # model/ holds the adapters, which load onto their base model through transformers + peft
    assert (killed / "model" / "adapter_config.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(killed / "model")
    assert any("lora_A" in n for n, _ in loaded.named_parameters())


@pytest.mark.slow
def test_gradient_accumulation_gives_the_one_pass_update(tok: Any, tmp_path: Path) -> None:
    model = tiny_model("gpt2", tok, tmp_path / "gpt2")
    data = chat_rows(tmp_path / "chat.jsonl")
    losses = {}
    for accum in (1, 4):
        over = {
            "grad_accum": accum,
            "lora": None,
            "autocast": "off",
            "probes": None,
            "gradient_checkpointing": False,
            "steps": 4,
            "eval_every": 4,
        }
        run = tmp_path / f"accum{accum}"
        train_hf(load_hf_config(data=lora_config(model, data, **over)), run)
        losses[accum] = [
            r["value"]
            for r in load_rows(run / "metrics.jsonl")
            if r["metric"] in ("loss", "train_loss")
        ]
    assert losses[4] == pytest.approx(losses[1], rel=1e-4)


@pytest.mark.slow
def test_bfloat16_weights_train_lora_adapters_on_cpu(tok: Any, tmp_path: Path) -> None:
    model = tiny_model("llama", tok, tmp_path / "llama")
    over = {"dtype": "bfloat16", "steps": 4, "eval_every": 4, "probes": None, "grad_accum": 1}
    seen = Seen()
    state = train_hf(
        load_hf_config(data=lora_config(model, chat_rows(tmp_path / "c.jsonl"), **over)),
        tmp_path / "run",
        callbacks=[seen],
    )
    assert seen.dtypes == {"torch.bfloat16", "torch.float32"}  # frozen base bf16, adapters fp32
    rows = load_rows(tmp_path / "run" / "metrics.jsonl")
    losses = [r["value"] for r in rows if r["metric"] == "loss" and r["task"] == "greet"]
    assert len(losses) == 2 and losses[-1] < losses[0]  # it learns
    assert state.step == 4


def test_bad_finetuning_settings_are_one_line_errors(tok: Any, tmp_path: Path) -> None:
    data = tmp_path / "unused.jsonl"
    with pytest.raises(RaremixError, match="grad_accum \\(16\\) is more than batch_size"):
        load_hf_config(data=lora_config(tmp_path, data, grad_accum=16))
    with pytest.raises(RaremixError, match=r"float16 .* add lora"):
        load_hf_config(data=lora_config(tmp_path, data, dtype="float16", lora=None))
    with pytest.raises(RaremixError, match=r"lora\.r"):
        load_hf_config(data=lora_config(tmp_path, data, lora={"r": 0}))
    with pytest.raises(RaremixError, match="truncation_side"):
        load_hf_config(data=lora_config(tmp_path, data, truncation_side="middle"))
    model = tiny_model("llama", tok, tmp_path / "llama")
    cfg = load_hf_config(
        data=lora_config(model, chat_rows(data), lora={"target_modules": ["qq_proj"]})
    )
    with pytest.raises(RaremixError, match=r"lora\.target_modules: .*q_proj"):
        train_hf(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run directory was made
