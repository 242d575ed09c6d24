"""The held-out rule and the counter-based draws underneath generation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.errors import RaremixError
from raremix.tasks import HELDOUT_FRACTION, in_heldout, make_task
from raremix.tasks.draws import Draws, example_keys
from raremix.tasks.text import concat, number_field, rows_to_strings, strings_to_rows

ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(ascii_text, min_size=1, max_size=8))
def test_heldout_depends_only_on_the_string_not_the_batch(strings: list[str]) -> None:
    together = in_heldout(strings)
    alone = np.array([in_heldout([s])[0] for s in strings])
    assert (together == alone).all()


def test_heldout_fraction_is_as_documented() -> None:
    strings = [str(i) for i in range(50_000)]
    assert abs(in_heldout(strings).mean() - HELDOUT_FRACTION) < 0.01


def test_non_ascii_input_is_a_one_line_error() -> None:
    with pytest.raises(RaremixError, match="not ASCII"):
        in_heldout(["abc", "né"])


@pytest.mark.parametrize("modulus", range(7, 101))
def test_every_modulus_keeps_a_real_heldout_set(modulus: int) -> None:
    inputs = [f"{a}+{b}" for a in range(modulus) for b in range(modulus)]
    held = in_heldout(inputs)
    # Binomial(p², 0.2): far from empty and far from everything, for every allowed p.
    assert 0.08 < held.mean() < 0.35, held.mean()


def test_small_input_spaces_keep_heldout_inputs() -> None:
    steps = [f"{r}{op}{x}" for r, op, x in itertools.product("0123456789", "+-*", "0123456789")]
    assert in_heldout(steps).sum() >= 30  # of 300
    digits = [f"{a}{b}" for a, b in itertools.product("0123456789", repeat=2)] + list("0123456789")
    assert in_heldout(digits).sum() >= 10  # of 110


def test_generation_enumerates_the_whole_heldout_set_of_a_tiny_task() -> None:
    task = make_task("step")
    everything = [
        f"{r}{op}{x}" for r, op, x in itertools.product("0123456789", "+-*", "0123456789")
    ]
    held = {s for s, h in zip(everything, in_heldout(everything), strict=True) if h}
    drawn = set(task.generate(np.arange(3000), 0, "heldout").inputs)
    assert drawn == held


def test_draws_are_in_range_and_roughly_uniform() -> None:
    d = Draws(example_keys(0, "train", np.arange(20_000), 0, 1).reshape(-1))
    x = d.ints(0, 7)
    assert x.min() == 0 and x.max() == 6
    assert np.abs(np.bincount(x) / len(x) - 1 / 7).max() < 0.01
    per_row = d.ints(1, np.arange(1, 20_001))  # (B,) high differs per row
    assert (per_row < np.arange(1, 20_001)).all()
    cols = d.ints(2, np.array([2, 5, 9]), 3)  # (B, 3) high differs per column
    assert (cols.max(axis=0) == [1, 4, 8]).all()


def test_draw_columns_do_not_depend_on_how_many_are_drawn() -> None:
    d = Draws(example_keys(3, "heldout", np.arange(10), 0, 2).reshape(-1))
    assert (d.bits(4, 3) == d.bits(4, 8)[:, :3]).all()
    assert not (d.bits(4, 3) == d.bits(5, 3)).any()


def test_distinct_samples_are_distinct_and_cover_the_range() -> None:
    d = Draws(example_keys(0, "train", np.arange(5000), 0, 1).reshape(-1))
    picks = d.distinct(0, 26, 5)
    assert all(len(set(row)) == 5 for row in picks.tolist())
    assert np.abs(np.bincount(picks[:, 4], minlength=26) / 5000 - 1 / 26).max() < 0.015


def test_concat_packs_variable_length_fields() -> None:
    a, b = np.array([0, 7, 123]), np.array([45, 6, 0])
    rows = concat(number_field(a, 3), b"+", number_field(b, 2))
    assert rows_to_strings(rows) == ["0+45", "7+6", "123+0"]
    assert rows_to_strings(strings_to_rows(["ab", "", "c"])) == ["ab", "", "c"]
