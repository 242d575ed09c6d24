"""MixtureLoader: a loader resumed under new weights continues exactly, for any number of workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raremix.errors import RaremixError
from raremix.mixture import MixtureDataset, build_sampler

pytest.importorskip("torchdata")
from torchdata.stateful_dataloader import StatefulDataLoader

from raremix.mixture.loader import MixtureLoader

pytestmark = [
    pytest.mark.filterwarnings("ignore:'set_vital' is deprecated"),  # torchdata's own call
    pytest.mark.filterwarnings("ignore:This DataLoader will create"),  # 3 workers on 2 cores
]

SIZES = {"copy": 60, "modadd": 9, "sort": 40}
STEPS, BATCH, SEED = 16, 8, 4


def mix(weights: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "mode": "stratified",
        "sources": [
            {"name": n, "size": SIZES[n], "weight": w} for n, w in zip(SIZES, weights, strict=True)
        ],
    }


def dataset(weights: tuple[float, float, float]) -> MixtureDataset:
    return MixtureDataset(mix(weights), seed=SEED, batch_size=BATCH, total_steps=STEPS)


def batches(items: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    return [(b["source"].tolist(), b["index"].tolist()) for b in items]


def single_process(old: tuple, new: tuple, stop: int) -> list[tuple[list[int], list[int]]]:
    """What one sampler delivers after `stop` batches under `old`, resumed under `new`."""
    before = build_sampler(mix(old), seed=SEED, batch_size=BATCH, total_steps=STEPS)
    for _ in range(stop):
        before.next_batch()
    after = build_sampler(mix(new), seed=SEED, batch_size=BATCH, total_steps=STEPS)
    after.load_state_dict(before.state_dict())
    return [(s.tolist(), i.tolist()) for s, i in after]


weights = st.tuples(*[st.integers(1, 6).map(float)] * 3)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    workers=st.sampled_from([0, 1, 2, 3]),
    stop=st.integers(0, STEPS),
    old=weights,
    new=weights | st.none(),  # None: the weights do not change
)
def test_resume_under_new_weights_is_the_single_process_stream(
    workers: int, stop: int, old: tuple, new: tuple | None
) -> None:
    new = new or old
    loader = MixtureLoader(dataset(old), num_workers=workers)
    it = iter(loader)
    head = [next(it) for _ in range(stop)]
    state = loader.state_dict()  # as a checkpoint holds it: then the process is killed
    del it, loader
    resumed = MixtureLoader(dataset(new), num_workers=workers)
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert [int(b["step"]) for b in head + tail] == list(range(STEPS))
    assert batches(tail) == single_process(old, new, stop)
    # no repeat and no gap within an epoch of any source, across the resume
    drawn = np.concatenate([b["source"] for b in head + tail])
    index = np.concatenate([b["index"] for b in head + tail])
    for s, size in enumerate(SIZES.values()):
        seq = index[drawn == s]
        for start in range(0, len(seq), size):
            epoch = seq[start : start + size]
            assert len(set(epoch.tolist())) == len(epoch)  # a full epoch: a permutation


def test_a_plain_loader_refuses_a_per_worker_resume_under_new_weights() -> None:
    loader = StatefulDataLoader(dataset((3, 1, 2)), batch_size=None, num_workers=2)
    it = iter(loader)
    [next(it) for _ in range(5)]
    state = loader.state_dict()
    del it
    plain = StatefulDataLoader(dataset((1, 5, 1)), batch_size=None, num_workers=2)
    plain.load_state_dict(state)
    with pytest.raises(
        RaremixError, match=r"resume through raremix\.mixture\.loader\.MixtureLoader"
    ):
        list(plain)
    same = StatefulDataLoader(dataset((3, 1, 2)), batch_size=None, num_workers=2)
    same.load_state_dict(state)  # unchanged weights: per-worker states resume exactly
    assert batches(list(same)) == single_process((3, 1, 2), (3, 1, 2), 5)


def test_mixture_loader_fixes_what_exactness_needs() -> None:
    with pytest.raises(RaremixError, match="sets 'in_order' itself"):
        MixtureLoader(dataset((1, 1, 1)), num_workers=2, in_order=False)
