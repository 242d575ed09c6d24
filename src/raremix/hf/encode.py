"""Text → tokens for a Hugging Face model, with the loss on what the model should learn.

An `Example` is a prompt and its response, or a whole chat conversation. `Encoder` turns
a list of them into right-padded `(input_ids, attention_mask, labels)`:

* prompt/response: `[bos] + prompt + response + eos`, trained on the response and eos;
* a conversation with a chat template: `tokenizer.apply_chat_template` renders and
  tokenises it (the template writes the BOS and end-of-turn tokens, so none is added:
  no double BOS), trained on every assistant turn (or only the last). The assistant
  tokens come from transformers' own `return_assistant_tokens_mask` when the template
  marks them with `{% generation %}`, else from rendering the conversation prefix by
  prefix: the tokens a turn adds after the generation prompt are that turn's;
* a conversation without a template: `role: content` lines, each assistant turn after
  `assistant:`, trained on every assistant turn and the final eos.

A sequence longer than `max_length` is cut on a declared side (left keeps a leading BOS
and the end: the response) and counted; one that loses every trained token is counted
apart as lost (nothing of it is learned), or stops the run under `lost_response: error`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch

from raremix.errors import RaremixError
from raremix.tokens import IGNORE

Turns = list[dict[str, str]]
Side = Literal["left", "right"]
GENERATION_MARK = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class Example:
    """A prompt and its reference response; for chat data also the whole conversation
    (ending in `response`, its final assistant turn)."""

    prompt: str
    response: str
    chat: Turns | None = None


@dataclass
class Cuts:
    """How many examples truncation touched: cut at all, lost some trained tokens, lost all."""

    truncated: int = 0
    response_cut: int = 0
    lost: int = 0

    def add(self, other: Cuts) -> None:
        self.truncated += other.truncated
        self.response_cut += other.response_cut
        self.lost += other.lost

    def facts(self, prefix: str = "") -> dict[str, int]:
        """As run facts: `truncated`, `truncated_response`, `truncated_lost`."""
        return {
            f"{prefix}truncated": self.truncated,
            f"{prefix}truncated_response": self.response_cut,
            f"{prefix}truncated_lost": self.lost,
        }


@dataclass
class Encoded:
    """A batch: ids, attention mask and labels, each (B, T), right-padded; labels aligned
    with the inputs (-100 where nothing is learned); and what truncation did to it."""

    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    cuts: Cuts


TEXT_CACHE = 1 << 16
"""Distinct texts an `Encoder` keeps the token ids of (least recently used dropped first)."""


class Encoder:
    """Encodes examples for one tokenizer, under the run's chat and truncation rules."""

    def __init__(
        self,
        tok: Any,
        max_length: int,
        *,
        side: Side = "left",
        lost_response: Literal["count", "error"] = "count",
        assistant_turns: Literal["all", "last"] = "all",
        template: str | None = None,
    ) -> None:
        self.tok, self.max_length, self.side = tok, max_length, side
        self.lost_response, self.assistant_turns = lost_response, assistant_turns
        self.template = template
        """The chat template conversations are rendered with (None: `role: content` lines)."""
        self.bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        # rows recur over a run (epochs, a rare task's few rows, role headers): each distinct
        # text is tokenized once; the tokenizer is deterministic, so the ids are the same
        self._ids = lru_cache(maxsize=TEXT_CACHE)(self._tokenize)
        self._pair = lru_cache(maxsize=TEXT_CACHE)(self._pair_uncached)

    def tokens(self, ex: Example) -> tuple[list[int], list[bool]]:
        """The example's whole token sequence and which of its tokens are trained."""
        if ex.chat is None:
            ids, trained = self._pair(ex.prompt, ex.response)
            return list(ids), list(trained)
        if self.template is None:
            return self._plain_chat(ex.chat)
        return self._templated(ex.chat)

    def prompt_tokens(self, ex: Example) -> list[int]:
        """What the model continues from to answer: everything before the final response."""
        if ex.chat is None:
            return self.bos + self._text(ex.prompt)
        if self.template is None:
            ids, _ = self._plain_chat(ex.chat, upto_reply=True)
            return ids
        return self._render(ex.chat[:-1], prompt=True)

    def encode(self, examples: Sequence[Example]) -> Encoded:
        """Right-padded `(ids, mask, labels)` of `examples`, each cut to `max_length`."""
        seqs, cuts = [], Cuts()
        for ex in examples:
            ids, trained = self.tokens(ex)
            if len(ids) > self.max_length:
                ids, trained = self._cut(ex, ids, trained, cuts)
            seqs.append((ids, trained))
        width = max(len(ids) for ids, _ in seqs)
        # filled in NumPy (a row costs ~1 µs there, several tensor ops in torch), one copy out
        out = np.full((len(seqs), width), pad_id(self.tok), dtype=np.int64)  # (B, T)
        mask = np.zeros((len(seqs), width), dtype=np.int64)  # (B, T)
        labels = np.full((len(seqs), width), IGNORE, dtype=np.int64)  # (B, T)
        for b, (ids, trained) in enumerate(seqs):
            out[b, : len(ids)] = ids
            mask[b, : len(ids)] = 1
            labels[b, : len(ids)] = np.where(trained, ids, IGNORE)
        return Encoded(
            torch.from_numpy(out), torch.from_numpy(mask), torch.from_numpy(labels), cuts
        )

    def _cut(
        self, ex: Example, ids: list[int], trained: list[bool], cuts: Cuts
    ) -> tuple[list[int], list[bool]]:
        n = self.max_length
        if self.side == "right":
            kept_ids, kept = ids[:n], trained[:n]
        else:  # keep a leading BOS: the model has always seen one first
            head = 1 if self.bos and ids[:1] == self.bos else 0
            kept_ids, kept = (
                ids[:head] + ids[len(ids) - n + head :],
                trained[:head] + trained[len(ids) - n + head :],
            )
        cuts.truncated += 1
        if sum(kept) < sum(trained):
            cuts.response_cut += 1
        if not any(kept):
            if self.lost_response == "error":
                raise RaremixError(
                    f"an example of {len(ids)} tokens loses its whole response when cut on the "
                    f"{self.side} to max_length {n} (prompt starts {ex.prompt[:40]!r}): raise "
                    "max_length, set truncation_side: left, or set lost_response: count"
                )
            cuts.lost += 1
        return kept_ids, kept

    def _text(self, text: str) -> list[int]:
        return list(self._ids(text))

    def _pair_uncached(
        self, prompt: str, response: str
    ) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        p, r = self._ids(prompt), self._ids(response)
        ids = (*self.bos, *p, *r, self.tok.eos_token_id)
        return ids, (False,) * (len(self.bos) + len(p)) + (True,) * (len(r) + 1)

    def _tokenize(self, text: str) -> tuple[int, ...]:
        return tuple(self.tok(text, add_special_tokens=False)["input_ids"])

    def _plain_chat(self, chat: Turns, upto_reply: bool = False) -> tuple[list[int], list[bool]]:
        """`role: content` lines; an assistant turn is `assistant:` then its content (trained
        for every assistant turn, or the last only), the last one followed by eos."""
        ids, trained = list(self.bos), [False] * len(self.bos)
        last = len(chat) - 1
        for k, turn in enumerate(chat):
            if turn["role"] != "assistant":
                part = self._text(f"{turn['role']}: {turn['content']}\n")
                ids, trained = ids + part, trained + [False] * len(part)
                continue
            head = self._text("assistant:")
            ids, trained = ids + head, trained + [False] * len(head)
            if upto_reply and k == last:
                break
            body = self._text(turn["content"])
            learn = self.assistant_turns == "all" or k == last
            tail = [self.tok.eos_token_id] if k == last else self._text("\n")
            ids += body + tail
            trained += [learn] * len(body) + [learn and k == last] * len(tail)
        return ids, trained

    def _render(self, turns: Turns, prompt: bool = False) -> list[int]:
        """`turns` through the chat template, as token ids (`prompt`: with the generation prompt)."""
        out = self.tok.apply_chat_template(
            turns,
            chat_template=self.template,
            add_generation_prompt=prompt,
            tokenize=True,
            return_dict=True,
        )
        return list(out["input_ids"])

    def _templated(self, chat: Turns) -> tuple[list[int], list[bool]]:
        """The conversation through the template; trained: its assistant turns' tokens."""
        assistant = [k for k, t in enumerate(chat) if t["role"] == "assistant"]
        if self.assistant_turns == "last":
            assistant = assistant[-1:]
        if GENERATION_MARK.search(str(self.template)):  # transformers knows the assistant spans
            out = self.tok.apply_chat_template(
                chat,
                chat_template=self.template,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
            )
            ids, marks = list(out["input_ids"]), [bool(m) for m in out["assistant_masks"]]
            if self.assistant_turns == "last":  # the last run of marked tokens
                end = max((i for i, m in enumerate(marks) if m), default=-1) + 1
                start = end
                while start > 0 and marks[start - 1]:
                    start -= 1
                marks = [start <= i < end for i in range(len(marks))]
            return ids, marks
        ids = self._render(chat)
        trained = [False] * len(ids)
        for k in assistant:
            before = self._render(chat[:k], prompt=True) if k else []
            upto = self._render(chat[: k + 1])
            if upto[: len(before)] != before or ids[: len(upto)] != upto:
                raise RaremixError(
                    "the chat template does not render a conversation as its earlier turns "
                    "followed by the next one, so its assistant tokens cannot be found: mark "
                    "them with {% generation %} in the template, or set assistant_turns: last"
                    if self.assistant_turns == "all"
                    else "the chat template renders a conversation differently from its "
                    "prompt plus reply: mark the reply with {% generation %} in the template"
                )
            trained[len(before) : len(upto)] = [True] * (len(upto) - len(before))
        return ids, trained


def pad_id(tok: Any) -> int:
    """The tokenizer's pad id, or its eos id when it has none (GPT-2)."""
    return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
