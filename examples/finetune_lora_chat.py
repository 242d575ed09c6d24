"""Fine-tune a tiny offline Llama-style model with LoRA on a long-tailed chat dataset, through
raremix, and look at per-task results and probes in TensorBoard. Nothing is downloaded.

    .venv/bin/python examples/finetune_lora_chat.py --out ft        # < 60 s on a laptop CPU
    tensorboard --logdir ft/run/tensorboard

It writes `ft/chat.jsonl` (three chat tasks: a common one-turn greeting answered 'hi', a medium
addition, a rare two-turn reversal), `ft/tiny-llama/` (a random 2-layer Llama with a
character tokenizer and a Llama-2-style chat template that starts with `{{ bos_token }}`)
and `ft/finetune.yaml`, then trains as `raremix hf-train ft/finetune.yaml --out ft/run`
would: LoRA adapters, 2 micro-batches per step, bf16 autocast, prompts cut on the left
to `max_length` (counted), probes and TensorBoard.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import yaml

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz +=:[]/\n"
TEMPLATE = (  # Llama-2's shape: the template writes the BOS and ends each reply with eos
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[inst] {{ m['content'] }} "
    "[/inst]{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)


def chats(seed: int = 0) -> list[dict[str, object]]:
    """A long tail: greet (80%), add (15%), rev (5%, two turns)."""
    rng, rows = random.Random(seed), []
    letters = "abcdefghij"
    for _ in range(800):
        name = "".join(rng.choice(letters) for _ in range(3))
        rows.append(
            {
                "task": "greet",
                "messages": [
                    {"role": "user", "content": f"hello {name}"},
                    {"role": "assistant", "content": "hi"},
                ],
            }
        )
    for _ in range(150):
        a, b = rng.randrange(10), rng.randrange(10)
        rows.append(
            {
                "task": "add",
                "messages": [
                    {"role": "user", "content": f"{a}+{b}="},
                    {"role": "assistant", "content": str(a + b)},
                ],
            }
        )
    for _ in range(50):
        w = "".join(rng.choice(letters) for _ in range(4))
        rows.append(
            {
                "task": "rev",
                "messages": [
                    {"role": "user", "content": f"word {w}"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "reverse it"},
                    {"role": "assistant", "content": w[::-1]},
                ],
            }
        )
    rng.shuffle(rows)
    return rows


def config(steps: int) -> dict[str, object]:
    return {
        "model": "tiny-llama",
        "data": {"path": "chat.jsonl", "messages": "messages"},
        "mixture": {
            "strategy": "temperature",
            "params": {"tau": 2},
            "sources": [{"name": "greet"}, {"name": "add"}, {"name": "rev"}],
        },
        "steps": steps,
        "batch_size": 16,
        "grad_accum": 2,
        "max_length": 40,
        "truncation_side": "left",
        "assistant_turns": "all",
        "lora": {"r": 8, "alpha": 16, "target_modules": "all-linear"},
        "autocast": "bfloat16",
        "optim": {"lr": 3.0e-2, "warmup_steps": 5},
        "eval_every": 20,
        "eval_examples": 12,
        "max_new_tokens": 6,
        "checkpoint_every": 1000,
        "rare": ["rev"],
        "probes": {"batch": 4, "probes": ["interference", "entropy"]},
        "loggers": ["tensorboard"],
        "threads": 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("ft"), help="folder for data, model, run")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    from raremix.callbacks.loggers import make_loggers
    from raremix.hf import load_hf_config, train_hf
    from raremix.hf.tiny import char_tokenizer, tiny_model

    hf_logging.disable_progress_bar()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chats()))
    tok = char_tokenizer(CHARS)
    tok.chat_template = TEMPLATE
    tiny_model("llama", tok, out / "tiny-llama", width=48, heads=4)
    (out / "finetune.yaml").write_text(yaml.safe_dump(config(args.steps), sort_keys=False))

    cfg = load_hf_config(out / "finetune.yaml")
    run = out / "run"
    state = train_hf(cfg, run, callbacks=make_loggers(cfg.loggers))

    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    first = {(r["task"], r["metric"]): r["value"] for r in rows if r["step"] == 0}
    last = {(r["task"], r["metric"]): r["value"] for r in rows if r["step"] == state.step}
    facts = state.facts
    print(
        f"\ntrained {state.step} steps, {facts['trainable_params']:,} of {facts['params']:,} "
        f"parameters (LoRA); {facts['truncated']} training sequences cut on the left, "
        f"{facts['truncated_lost']} lost their response"
    )
    print(f"{'task':6} {'acc@0':>6} {'acc':>6} {'loss@0':>7} {'loss':>6}   probes at the end")
    for task in ("greet", "add", "rev"):
        probes = "  ".join(
            f"{m.removeprefix('probe/')}={v:.3g}"
            for (t, m), v in sorted(last.items())
            if t == task and m.startswith("probe/")
        )
        print(
            f"{task:6} {first[task, 'acc']:6.2f} {last[task, 'acc']:6.2f} "
            f"{first[task, 'loss']:7.3f} {last[task, 'loss']:6.3f}   {probes}"
        )
    print(
        f"\ntensorboard --logdir {run / 'tensorboard'}   # <task>/acc, probe/<name>/<task>, train/loss"
    )


if __name__ == "__main__":
    main()
