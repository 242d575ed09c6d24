"""`MixtureLoader`: torchdata's `StatefulDataLoader` for a `MixtureDataset`, resumed exactly.

    loader = MixtureLoader(MixtureDataset(mix, seed=0, batch_size=128), num_workers=2)
    ...
    state = loader.state_dict()                    # a plain StatefulDataLoader state
    loader = MixtureLoader(MixtureDataset(new_mix, seed=0, batch_size=128), num_workers=2)
    loader.load_state_dict(state)                  # continues at the next step, new weights

A StatefulDataLoader keeps each worker's dataset state as of the last batch *that
worker* delivered, so with W workers the states lag the loader by up to W-1 steps.
Resumed as they are, each worker re-derives the lagging steps, which the other
workers already delivered, under the new weights: cursors drift and examples repeat.
`load_state_dict` here gives every worker the state of the worker that delivered the
last batch, the loader's true position, so that the stream after a resume equals a
single-process sampler's loaded at that step under the new mixture.

Needs the `hf` extra (torchdata).
"""

from __future__ import annotations

import copy
from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader

from raremix.errors import RaremixError
from raremix.mixture.adapters import MixtureDataset

_SNAPSHOT, _WORKERS, _DATASET = "_snapshot", "_worker_snapshots", "dataset_state"


def align_worker_states(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of a StatefulDataLoader `state` whose workers all hold the loader's position.

    That position is the most advanced worker state: delivery is in step order, so the
    worker that delivered the last batch is the one furthest on. States of fewer than
    two workers, or of a loader that delivered nothing, are returned unchanged.
    """
    workers = state.get(_SNAPSHOT, {}).get(_WORKERS, {})
    live = [
        w[_DATASET] for w in workers.values() if (w.get(_DATASET) or {}).get("sampler") is not None
    ]
    if len(workers) < 2 or not live:
        return state
    front = max(live, key=lambda d: (d["sampler"]["step"], d["sampler"]["ended"]))
    aligned = copy.deepcopy(state)
    for w in aligned[_SNAPSHOT][_WORKERS].values():
        w[_DATASET] = {**copy.deepcopy(front), "aligned": True}
    return aligned


class MixtureLoader(StatefulDataLoader):
    """A StatefulDataLoader of a `MixtureDataset`'s batches whose resume is exact for any
    number of workers, also under a changed mixture (see the module docstring).

    Items are whole batches (`batch_size=None`); delivery is in step order and every
    batch is snapshotted, as exactness needs (`in_order` and `snapshot_every_n_steps`
    are fixed). Other keyword arguments go to StatefulDataLoader.
    """

    def __init__(self, dataset: MixtureDataset, num_workers: int = 0, **kwargs: Any) -> None:
        fixed = {"batch_size", "in_order", "snapshot_every_n_steps"} & set(kwargs)
        if fixed:
            raise RaremixError(
                f"MixtureLoader sets '{sorted(fixed)[0]}' itself (whole batches, in order, every "
                "batch snapshotted): drop the argument"
            )
        super().__init__(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            in_order=True,
            snapshot_every_n_steps=1,
            **kwargs,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from `state_dict()` of this or a plain StatefulDataLoader, workers aligned."""
        super().load_state_dict(align_worker_states(state_dict))
