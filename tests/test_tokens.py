"""The shared vocabulary: coverage, stable ids, framings, encoding and decoding."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.errors import RaremixError
from raremix.tasks import TASKS, make_task
from raremix.tokens import (
    FRAME_SEP,
    FRAMINGS,
    IGNORE,
    Tokenizer,
    decode,
    default_tokenizer,
    encode,
    encode_prompts,
    prefix,
)

TOK = default_tokenizer()


def test_ids_are_stable_and_sorted() -> None:
    assert (TOK.pad_id, TOK.sep_id, TOK.eos_id) == (0, 1, 2)
    assert TOK.tokens[:3] == ("<pad>", "<sep>", "<eos>")
    names = sorted(TASKS)
    assert [TOK.task_id(n) for n in names] == list(range(3, 3 + len(names)))
    chars = TOK.tokens[3 + len(names) :]
    assert list(chars) == sorted(chars) and all(len(c) == 1 for c in chars)
    assert Tokenizer().tokens == TOK.tokens
    assert TOK.size == len(TOK.tokens)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_character_a_task_can_produce_is_in_the_vocabulary(name: str) -> None:
    knob = make_task(name).knob
    for c in {knob.lo, knob.hi}:
        task = make_task(name, c if not knob.odd or c % 2 else c + 1)
        for split in ("train", "heldout"):
            ex = task.generate(np.arange(300), seed=1, split=split)  # type: ignore[arg-type]
            batch = TOK.encode([TOK.prefix(task, "instruction")] * 300, ex.inputs, ex.answers)
            assert batch.idx.shape[0] == 300
        TOK.encode_text(task.output_space + task.alphabet)


def test_encode_layout_targets_and_round_trip() -> None:
    task = make_task("modadd")
    ex = task.generate(np.arange(64), seed=0, split="train")
    prefixes = [TOK.prefix(task, FRAMINGS[i % len(FRAMINGS)]) for i in range(64)]
    b = TOK.encode(prefixes, ex.inputs, ex.answers)
    assert b.idx.dtype == torch.long and b.targets.shape == b.idx.shape
    for r in range(64):
        p, x, y = prefixes[r], ex.inputs[r], ex.answers[r]
        start = len(p) + len(x) + 1
        assert int(b.answer_start[r]) == start and int(b.lengths[r]) == start + len(y) + 1
        row = b.idx[r].tolist()
        assert row[: len(p)] == p and row[start - 1] == TOK.sep_id
        assert TOK.decode(row[len(p) : start - 1]) == x
        assert TOK.decode(row[start:]) == y  # stops at <eos>
        assert row[start + len(y)] == TOK.eos_id and set(row[start + len(y) + 1 :]) <= {0}
        tgt = b.targets[r].tolist()
        # Loss only where the next token is an answer token or <eos>.
        for t, v in enumerate(tgt):
            if start - 1 <= t < start + len(y):
                assert v == row[t + 1]
            else:
                assert v == IGNORE
        assert sum(v != IGNORE for v in tgt) == len(y) + 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="0123456789abcxyz+?:,() ", max_size=12),
            st.text(alphabet="0123456789<=>xo ", max_size=6),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_round_trip_any_vocabulary_text(pairs: list[tuple[str, str]]) -> None:
    inputs, answers = [p[0] for p in pairs], [p[1] for p in pairs]
    b = encode([[TOK.task_id("copy")]] * len(pairs), inputs, answers)
    for r, (x, y) in enumerate(pairs):
        assert decode(b.idx[r, 1:]) == f"{x}<sep>{y}"


def test_framings_produce_the_expected_prefixes() -> None:
    task, other = make_task("reverse"), make_task("sort")
    assert prefix(task) == [TOK.task_id("reverse")]
    assert TOK.prefix(task, "empty") == []
    assert TOK.decode(TOK.prefix(task, "instruction")) == "reverse the digits" + FRAME_SEP
    assert TOK.decode(TOK.prefix(task, "output_space")) == task.output_space + FRAME_SEP
    assert TOK.decode(TOK.prefix(task, "wrong", other)) == other.instruction + FRAME_SEP
    wrong = TOK.prefix(task, "wrong")
    assert wrong == TOK.prefix(task, "wrong")  # deterministic
    assert TOK.decode(wrong) != task.instruction + FRAME_SEP
    for name in TASKS:  # every task has a distinct default decoy
        t = make_task(name)
        assert TOK.decode(TOK.prefix(t, "wrong")) != t.instruction + FRAME_SEP


def test_framing_errors_are_one_line() -> None:
    task = make_task("reverse")
    with pytest.raises(
        RaremixError, match="unknown framing 'instructoin': did you mean 'instruction'"
    ):
        TOK.prefix(task, "instructoin")
    with pytest.raises(RaremixError, match="another task's instruction"):
        TOK.prefix(task, "wrong", make_task("reverse", 12))
    with pytest.raises(RaremixError, match="did you mean 'modadd'"):
        TOK.task_id("modad")


@pytest.mark.parametrize("bad", ["é", "A", "\t", "~", "\0"])
def test_unknown_character_is_named(bad: str) -> None:
    with pytest.raises(RaremixError, match=re.escape(f"character {bad!r} is not in the raremix")):
        TOK.encode([[]], ["12" + bad], ["1"])


def test_batch_parts_must_match() -> None:
    with pytest.raises(RaremixError, match="batch parts differ"):
        TOK.encode([[], []], ["1"], ["1"])
    with pytest.raises(RaremixError, match="prefix token ids"):
        TOK.encode([[TOK.size]], ["1"], ["1"])


@pytest.mark.parametrize("side", ["left", "right"])
def test_prompts_end_with_sep_and_pad_on_the_chosen_side(side: str) -> None:
    task = make_task("add")
    ex = task.generate(np.arange(8), seed=0, split="heldout")
    prefixes = [TOK.prefix(task)] * 4 + [TOK.prefix(task, "instruction")] * 4
    idx, lengths = encode_prompts(prefixes, ex.inputs, side=side)  # type: ignore[arg-type]
    width = idx.shape[1]
    for r in range(8):
        n = int(lengths[r])
        row = idx[r].tolist()
        real = row[width - n :] if side == "left" else row[:n]
        pad = row[: width - n] if side == "left" else row[n:]
        assert real == prefixes[r] + TOK.encode_text(ex.inputs[r]) + [TOK.sep_id]
        assert set(pad) <= {TOK.pad_id}
    with pytest.raises(RaremixError, match="padding side"):
        TOK.encode_prompts(prefixes, ex.inputs, side="middle")  # type: ignore[arg-type]


def test_decode_stops_at_eos_and_names_other_specials() -> None:
    ids = [*TOK.encode_text("12"), TOK.pad_id, TOK.task_id("copy"), TOK.eos_id, 40]
    assert TOK.decode(ids) == "12<pad><copy>"
    assert TOK.decode(np.array(ids)) == TOK.decode(torch.tensor(ids))
    assert TOK.decode_batch(torch.tensor([ids, ids])) == ["12<pad><copy>"] * 2


def test_sequence_length_bounds_every_encoded_example() -> None:
    for name in TASKS:
        task = make_task(name)
        ex = task.generate(np.arange(200), seed=0, split="train")
        for framing in FRAMINGS:
            b = TOK.encode([TOK.prefix(task, framing)] * 200, ex.inputs, ex.answers)
            assert int(b.lengths.max()) <= TOK.sequence_length(task, framing)
