"""Chat `messages` → (prompt, response): the response is the final assistant turn.

The prompt is every turn before it, rendered either plainly (`role: content` lines
ending in `assistant:`) or with a Hugging Face tokenizer's chat template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raremix.errors import RaremixError

Turns = list[dict[str, str]]
Render = Callable[[Turns], str]


def split_messages(messages: Any) -> tuple[Turns, str] | str:
    """(turns before the reply, the reply) — or, for invalid messages, the reason why."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return f"is a {type(messages).__name__}, not a list of {{role, content}} turns"
    if not messages:
        return "is an empty list: give at least the assistant's reply"
    turns: Turns = []
    for k, turn in enumerate(messages, 1):
        if not isinstance(turn, dict):
            return f"turn {k} is a {type(turn).__name__}, not a {{role, content}} object"
        role, content = turn.get("role"), turn.get("content")
        if not isinstance(role, str) or not role:
            return f"turn {k} has no 'role' string"
        if not isinstance(content, str):
            return f"turn {k} has no 'content' string"
        turns.append({"role": role, "content": content})
    last = turns[-1]
    if last["role"] != "assistant":
        return (
            f"ends with a '{last['role']}' turn: end each conversation with the assistant's reply"
        )
    if not last["content"].strip():
        return "the final assistant turn is empty"
    return turns[:-1], last["content"]


def render_plain(turns: Turns) -> str:
    """`role: content` per turn, then `assistant:` — the model continues from there."""
    return "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant:"


def template_renderer(tokenizer: str) -> Render:
    """A renderer using the chat template of the HF tokenizer at `tokenizer` (path or name)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise RaremixError(
            "chat_template needs transformers: pip install 'raremix[hf]', or unset chat_template"
        ) from None
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as err:
        raise RaremixError(
            f"chat_template: cannot load tokenizer '{tokenizer}' ({str(err).splitlines()[0]}): "
            "give a local tokenizer folder or a reachable hub name"
        ) from None
    if not getattr(tok, "chat_template", None):
        raise RaremixError(
            f"chat_template: tokenizer '{tokenizer}' has no chat template: pick one that has, "
            "or unset chat_template for plain 'role: content' prompts"
        )

    def render(turns: Turns) -> str:
        return str(tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))

    return render
