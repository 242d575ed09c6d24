"""The sampler: (seed, step) → (source, example index), exact, resumable and shardable.

Every step draws one *global* batch of `batch_size` examples. Which source fills
each slot is decided from counter-based randomness keyed by (seed, step, slot); the
example is the next one of that source's cursor, looked up in a random-access
permutation keyed by (seed, source name, source epoch). So:

* the state is a cursor (examples drawn) and a carried remainder per source, plus
  the step: O(sources), and a resume at step 10**8 costs what one at step 10 does;
* weights may change at any batch boundary (schedule, `set_weights`, a resumed run
  with a new plan): cursors continue, so nothing is dropped or repeated within an
  epoch of any source;
* every rank computes the same global batch decisions and materialises only its
  contiguous slice: the union over ranks is the single-process stream;
* spaced sources (`every`/`window`, see `spacing`) get their counts from what they are
  owed, placed in the batches their spacing allows; the others fill the rest by the
  mode. The owed amounts and last appearances are part of the state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from raremix import seeding
from raremix.errors import RaremixError, whole_number
from raremix.mixture.draw import InverseCDF, arrange, draw_iid, draw_stratified, occurrence
from raremix.mixture.permute import feistel_domain, permute, uniforms
from raremix.mixture.resolve import Plan
from raremix.mixture.spacing import check_spacing, spaced_counts
from raremix.mixture.weights import normalise
from raremix.seeding import finalize64, finalize64_int, key_of

STATE_FORMAT = "raremix.mixture.sampler/1"
_ARRANGE_SALT = seeding.salt("mixture.arrange")
_SPACING_SALT = seeding.salt("mixture.spacing")
_EPOCH_MUL = seeding.GOLDEN  # epoch e of a source is keyed by its key + e × golden
# rows of the per-source table: size, permutation domain, current epoch key, position in it
_SIZE, _H, _MASK, _C, _KEY, _POS = range(6)


class MixtureSampler:
    """Draws batches of (source id, example index) from a resolved mixture `Plan`.

    `batch_size` is the global batch (all ranks together); each rank gets its
    contiguous `batch_size // world_size` slots of it. Build one with `build_sampler`.
    """

    def __init__(
        self, plan: Plan, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> None:
        whole_number(seed, "seed")
        whole_number(batch_size, "batch_size", minimum=1)
        whole_number(rank, "rank")
        whole_number(world_size, "world_size", minimum=1)
        if world_size < 1 or not 0 <= rank < world_size:
            raise RaremixError(
                f"rank {rank} is outside world_size {world_size}: need 0 <= rank < world_size"
            )
        if batch_size % world_size:
            raise RaremixError(
                f"global batch_size {batch_size} does not split over world_size {world_size}: "
                "make it a multiple of the world size"
            )
        self.plan = plan
        self.names: tuple[str, ...] = plan.names
        self.sizes: np.ndarray = plan.sizes
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        self.local_batch = self.batch_size // self.world_size
        k = len(self.names)
        self._seed_key = key_of("raremix.mixture", self.seed)
        # one key per source, by name: reordering sources in a new plan keeps the streams
        self._source_keys = np.array(
            [key_of(self._seed_key, n) for n in self.names], dtype=np.uint64
        )
        # per-source permutation domains, and each source's current epoch (start, key):
        # computed once and gathered per example instead of recomputed per example
        self._epoch_start = np.zeros(k, dtype=np.int64)
        self._table = np.zeros((6, k), dtype=np.uint64)
        self._table[_SIZE] = self.sizes
        self._table[_H], self._table[_MASK], self._table[_C] = feistel_domain(self.sizes)
        self._table[_KEY] = self._keys_for(np.arange(k), np.zeros(k, dtype=np.int64))
        self._step = 0
        self._counts = np.zeros(k, dtype=np.int64)
        self._carry = np.zeros(k)
        self._target = np.zeros(k)
        self._override: np.ndarray | None = None
        self._ended = False
        self._dormant: dict[str, list[int]] = {}
        self._chooser: tuple[np.ndarray, InverseCDF] | None = None
        self._owed = np.zeros(k)  # spacing: examples each spaced source is owed
        self._last = np.full(k, -1, dtype=np.int64)  # spacing: step it last appeared
        if plan.spacing is not None:
            check_spacing(
                self.names, plan.spacing, plan.schedule.vectors, self.batch_size, plan.total_steps
            )

    # --- what the sampler will do --------------------------------------------------

    @property
    def step(self) -> int:
        """The global step (batch index) the next `next_batch` draws."""
        return self._step

    @property
    def ended(self) -> bool:
        """Whether every source with positive weight is exhausted (the stream is over)."""
        return self._ended

    @property
    def counts(self) -> np.ndarray:
        """Examples drawn so far from each source, over all ranks (a copy)."""
        return self._counts.copy()

    @property
    def targets(self) -> np.ndarray:
        """Σ over drawn batches of batch length × target weight, per source (a copy)."""
        return self._target.copy()

    def weights_at(self, step: int) -> np.ndarray:
        """Target weights at `step`: the `set_weights` override if any, else the schedule."""
        return self._override if self._override is not None else self.plan.schedule.weights_at(step)

    def set_weights(
        self, weights: Sequence[float] | np.ndarray | Mapping[str, float] | None
    ) -> None:
        """Override the schedule from the next batch on (None returns to the schedule).

        Takes a vector in `names` order or a mapping with every name; normalised. The
        override is part of `state_dict`, so a resumed run keeps it.
        """
        if weights is None:
            self._override = None
            return
        if isinstance(weights, Mapping):
            missing = [n for n in self.names if n not in weights]
            extra = [n for n in weights if n not in self.names]
            if missing or extra:
                bad = f"misses '{missing[0]}'" if missing else f"has unknown source '{extra[0]}'"
                raise RaremixError(
                    f"set_weights: the mapping {bad}: give one weight per source in sampler.names"
                )
            weights = [weights[n] for n in self.names]
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.names),):
            raise RaremixError(
                f"set_weights: got {w.shape[0] if w.ndim else 0} weights for {len(self.names)} sources: give one per source"
            )
        self._override = normalise(w, "set_weights weights")
        self._override.flags.writeable = False

    # --- drawing ----------------------------------------------------------------------

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """This rank's part of global batch `step`: (source ids, example indices), int64.

        Raises StopIteration once every source with positive weight is exhausted; the
        batch in which that happens is short (and may be empty on some ranks).
        """
        out = self._advance(materialise=True)
        assert out is not None
        return out

    def skip_batch(self) -> None:
        """Advance past one global batch without materialising indices (for sharding)."""
        self._advance(materialise=False)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches until the stream ends or the plan's total_steps is reached."""
        while self.plan.total_steps is None or self._step < self.plan.total_steps:
            try:
                yield self.next_batch()
            except StopIteration:
                return

    def _effective(self, weights: np.ndarray, room: np.ndarray) -> np.ndarray:
        return np.where(room > 0, weights, 0.0)

    def _choose(self, eff: np.ndarray) -> InverseCDF:
        """An InverseCDF for `eff`, reused while the effective weights stay the same.

        The guide table is built when the weights are seen a second time in a row:
        it pays for itself only when reused, and a resume's first batch stays cheap.
        """
        if self._chooser is not None and np.array_equal(self._chooser[0], eff):
            if not self._chooser[1].buckets:
                self._chooser = (eff, InverseCDF(eff, guide=True))
            return self._chooser[1]
        choose = InverseCDF(eff, guide=False)
        self._chooser = (eff, choose)
        return choose

    def _advance(self, materialise: bool) -> tuple[np.ndarray, np.ndarray] | None:
        if self._ended:
            raise StopIteration
        step = self._step
        weights = self.weights_at(step)
        room = self.plan.caps - self._counts
        eff = self._effective(weights, room)
        if not eff.any():
            self._ended = True
            raise StopIteration
        step_key = finalize64_int(self._seed_key ^ finalize64_int(step))
        k = len(self.names)
        if self.plan.spacing is not None and (eff * ~self.plan.spacing.spaced).any():
            src, occ, per_source = self._draw_spaced(step, step_key, eff, room, materialise)
        elif self.plan.mode == "stratified":
            per_source, self._carry = draw_stratified(self.batch_size, eff, self._carry, room)
            # the slot order matters only to whoever materialises this batch
            src, occ = (
                arrange(per_source, step_key ^ _ARRANGE_SALT) if materialise else (None, None)
            )
        else:
            src = draw_iid(step_key, self.batch_size, eff, room, self._choose(eff))
            per_source = np.bincount(src, minlength=k)
            occ = None
        drawn = int(per_source.sum())
        out = None
        if src is not None and materialise:
            lo = min(self.rank * self.local_batch, drawn)
            hi = min(lo + self.local_batch, drawn)
            if occ is None:
                whole = lo == 0 and hi == len(src)
                occ = occurrence(src, k, lo, hi, per_source if whole else None)
            else:
                occ = occ[lo:hi]
            out = (np.asarray(src[lo:hi], dtype=np.int64), self._indices(src[lo:hi], occ))
        self._counts += per_source
        self._target += drawn * weights
        self._step += 1
        if drawn < self.batch_size:
            self._ended = True
        return out

    def _draw_spaced(
        self, step: int, key: int, eff: np.ndarray, room: np.ndarray, materialise: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """Spaced sources' counts from `spaced_counts`; the other sources fill the rest of the
        batch by the mode. Slots are laid out by `arrange`, so a clump is spread over ranks."""
        assert self.plan.spacing is not None
        spaced = self.plan.spacing.spaced
        u = uniforms(key ^ _SPACING_SALT, len(self.names))
        fixed, self._owed, self._last = spaced_counts(
            step,
            eff / eff.sum(),
            room,
            self._owed,
            self._last,
            self.plan.spacing,
            self.batch_size,
            u,
        )
        left = self.batch_size - int(fixed.sum())
        rest, rest_room = np.where(spaced, 0.0, eff), np.where(spaced, 0, room)
        k = len(self.names)
        if self.plan.mode == "stratified":
            counts, self._carry = draw_stratified(left, rest, self._carry, rest_room)
            per_source = fixed + counts
            if not materialise:
                return None, None, per_source
            src, occ = arrange(per_source, key ^ _ARRANGE_SALT)
            return src, occ, per_source
        drawn = draw_iid(key, left, rest, rest_room, self._choose(rest)) if left else fixed[:0]
        per_source = fixed + np.bincount(drawn, minlength=k)
        if not materialise:
            return None, None, per_source
        # the iid draws are one group (index k) among the spaced sources' groups
        group, nth = arrange(np.append(fixed, len(drawn)), key ^ _ARRANGE_SALT)
        at = group == k
        group[at] = drawn[nth[at]]
        return group, None, per_source

    def _keys_for(self, sources: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """Permutation keys for (source, epoch) pairs: a hash of (seed, name, epoch)."""
        return finalize64(
            self._source_keys[sources] + epochs.astype(np.uint64) * np.uint64(_EPOCH_MUL)
        )

    def _indices(self, s: np.ndarray, occ: np.ndarray) -> np.ndarray:
        """Example indices for slots drawing sources `s`, each the `occ`-th draw of its
        source in this batch: each source's next positions in its epoch permutation."""
        if len(s) == 0:
            return np.zeros(0, dtype=np.int64)
        table = self._table
        stale = np.flatnonzero(
            (self._counts < self._epoch_start) | (self._counts >= self._epoch_start + self.sizes)
        )
        if len(stale):  # sources that entered a new epoch since their table entry
            epochs = self._counts[stale] // self.sizes[stale]
            self._epoch_start[stale] = epochs * self.sizes[stale]
            table[_KEY, stale] = self._keys_for(stale, epochs)
        table[_POS] = self._counts - self._epoch_start
        cols = np.take(table, s, axis=1)  # one gather for every per-source number
        size, pos, keys = cols[_SIZE], cols[_POS], cols[_KEY]
        np.add(pos, occ, out=pos, casting="unsafe")  # occ >= 0: no cast copy needed
        later = np.flatnonzero(pos >= size)
        if len(later):  # draws that run into the following epoch(s) within this batch
            draw = self._counts[s[later]] + occ[later]
            epochs = draw // self.sizes[s[later]]
            pos[later] = draw - epochs * self.sizes[s[later]]
            keys[later] = self._keys_for(s[later], epochs)
        return permute(pos, size, keys, (cols[_H], cols[_MASK], cols[_C]))

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the stream exactly: O(sources), JSON-able."""
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "step": self._step,
            "ended": self._ended,
            "names": list(self.names),
            "sizes": self.sizes.tolist(),
            "counts": self._counts.tolist(),
            "carry": self._carry.tolist(),
            "targets": self._target.tolist(),
            "override": None if self._override is None else self._override.tolist(),
            "dormant": {n: list(v) for n, v in self._dormant.items()},
            **(
                {"spacing": {"owed": self._owed.tolist(), "last": self._last.tolist()}}
                if self.plan.spacing is not None
                else {}
            ),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state_dict()`; the plan, batch size and sharding may differ.

        Cursors are matched by source name: a source new to the plan starts fresh, one
        the plan dropped is kept (dormant) in the state so that re-adding it later
        does not repeat its examples. The seed and each kept source's size must match.
        """
        if state.get("format") != STATE_FORMAT:
            raise RaremixError(
                f"not a mixture sampler state (format {state.get('format')!r}): pass sampler.state_dict()"
            )
        if int(state["seed"]) != self.seed:
            raise RaremixError(
                f"the state was saved with seed {state['seed']} but this sampler has seed {self.seed}: "
                f"resume with seed={state['seed']}, or the stream would repeat and skip examples"
            )
        names = list(state["names"])
        sizes = np.asarray(state["sizes"], dtype=np.int64)
        counts = np.asarray(state["counts"], dtype=np.int64)
        carry = np.asarray(state["carry"], dtype=np.float64)
        target = np.asarray(state["targets"], dtype=np.float64)
        if not len(names) == len(sizes) == len(counts) == len(carry) == len(target):
            raise RaremixError(
                "the sampler state is damaged (lists of unequal length): use an intact checkpoint"
            )
        where = {n: i for i, n in enumerate(names)}
        dormant = {n: (int(v[0]), int(v[1])) for n, v in state.get("dormant", {}).items()}
        idx = np.array([where.get(n, -1) for n in self.names], dtype=np.int64)
        have = idx >= 0
        # sources the state knows: cursors by name, vectorised (a resume costs O(sources))
        new_counts = np.where(have, counts[idx], 0)
        known_sizes = np.where(have, sizes[idx], self.sizes)
        for j in np.flatnonzero(~have).tolist():  # sources re-added after a plan dropped them
            if self.names[j] in dormant:
                known_sizes[j], new_counts[j] = dormant[self.names[j]]
        changed = np.flatnonzero(known_sizes != self.sizes)
        if len(changed):  # checked before anything changes: a refused state leaves no trace
            bad = int(changed[0])
            raise RaremixError(
                f"source '{self.names[bad]}' had {known_sizes[bad]} examples when the state was saved "
                f"and has {self.sizes[bad]} now: its permutation would change; keep the size or start fresh"
            )
        self._counts = new_counts
        self._carry = np.where(have, carry[idx], 0.0)
        self._target = np.where(have, target[idx], 0.0)
        here = set(self.names)
        self._dormant = {n: list(v) for n, v in dormant.items() if n not in here}
        self._dormant.update(
            {n: [int(sizes[i]), int(counts[i])] for n, i in where.items() if n not in here}
        )
        same_sources = list(state["names"]) == list(self.names)
        # with other sources the stream may go on: the next batch decides afresh
        self._step, self._ended = int(state["step"]), bool(state["ended"]) and same_sources
        override = state.get("override")
        # an override is kept only for the same sources; with a new plan, the plan rules
        self._override = None
        if override is not None and same_sources:
            # restored bit for bit: normalising again could move the last bits
            self._override = np.array(override, dtype=np.float64)
            self._override.flags.writeable = False
        self._chooser = None
        # spacing by name; a source new to the plan (or a state from before spacing)
        # starts owing nothing, its first window counting from the resumed step
        spacing = state.get("spacing") or {"owed": [0.0] * len(names), "last": [-1] * len(names)}
        owed = np.asarray(spacing["owed"], dtype=np.float64)
        last = np.asarray(spacing["last"], dtype=np.int64)
        self._owed = np.where(have, owed[idx], 0.0)
        self._last = np.where(have & ("spacing" in state), last[idx], self._step - 1)
