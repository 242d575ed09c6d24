"""The one keyed-hash primitive: splitmix64 and its finaliser, and the named seed domains."""

from __future__ import annotations

import numpy as np
import pytest

from raremix import seeding
from raremix.errors import RaremixError
from raremix.mixture import permute
from raremix.tasks import draws


def test_splitmix64_matches_the_reference_generator() -> None:
    # Vigna's splitmix64.c from state 0: the first three outputs
    state, want = 0, [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    got = []
    for _ in want:
        got.append(seeding.splitmix64_int(state))
        state = (state + seeding.GOLDEN) & seeding.MASK64
    assert got == want


def test_the_two_forms_differ_by_the_gamma_and_agree_across_ints_and_arrays() -> None:
    x = np.random.default_rng(0).integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2)
    whole, final = seeding.splitmix64(x), seeding.finalize64(x)
    assert (whole == seeding.finalize64(x + np.uint64(seeding.GOLDEN))).all()
    assert not (whole == final).any()
    assert [seeding.splitmix64_int(int(v)) for v in x[:50]] == whole[:50].tolist()
    assert [seeding.finalize64_int(int(v)) for v in x[:50]] == final[:50].tolist()
    # the names the two modules exported before keep their (different) meanings
    assert permute.mix64 is seeding.finalize64 and draws.splitmix64 is seeding.splitmix64


def test_seed_domains_are_distinct_and_unknown_ones_name_the_fix() -> None:
    assert len(set(seeding.DOMAINS.values())) == len(seeding.DOMAINS)
    assert seeding.salt("task.answer") == 0xA75E_0000_0000_0001
    with pytest.raises(RaremixError, match=r"unknown seed domain 'task.anwser'.*'task.answer'"):
        seeding.salt("task.anwser")
