"""Benchmark the mixture sampler against Hugging Face `datasets.interleave_datasets`.

    .venv/bin/python benchmarks/sampler.py            # 1,000 sources (as in LAB_NOTES)
    .venv/bin/python benchmarks/sampler.py --quick    # 100 sources, shorter timings

Measures, in one process and one run:
  * sampling decisions per second — (source, example index) pairs — for 1,000 sources
    with Zipf weights, iid and stratified, with small (200-row) sources, whose cursors
    cross several epochs per batch, and large (10**6-row) ones;
  * the cost of resuming at step 10**8 (load_state_dict + the first batch) next to the
    cost at step 10: a resume never replays the stream, so they should match;
  * the same mixture through `interleave_datasets` on the same in-memory HF datasets
    (build time, rows/s) next to raremix fetching the same rows, and the speed ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from raremix.mixture import MixtureSampler, TableSources, build_sampler
from raremix.mixture.adapters import table_rows


def zipf_mixture(k: int, size: int, mode: str) -> dict:
    w = 1.0 / np.arange(1, k + 1)
    return {
        "mode": mode,
        "sources": [
            {"name": f"s{i:04d}", "size": size, "weight": float(w[i] / w.sum())} for i in range(k)
        ],
    }


def rate(fn: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Items per wall-clock second and per CPU second of this process, after a warm-up.

    On a shared machine the wall-clock rate falls with other jobs' load; the CPU-time
    rate is what this process achieves while it runs.
    """
    fn()
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += fn()
    return done / elapsed, done / (time.process_time() - cpu)


def decisions_per_second(
    k: int, size: int, mode: str, batch: int, seconds: float
) -> tuple[float, float]:
    sampler = build_sampler(zipf_mixture(k, size, mode), seed=0, batch_size=batch)
    return rate(lambda: len(sampler.next_batch()[0]), seconds)


def resume_ms(k: int, batch: int, step: int) -> float:
    """Median ms to load a state saved at `step` and draw the next batch."""
    mix = zipf_mixture(k, 200, "iid")
    sampler = build_sampler(mix, seed=0, batch_size=batch)
    sampler.next_batch()
    state = sampler.state_dict()
    # a state as it would be at `step`: the cursors a run of that length would hold
    w = np.array([s["weight"] for s in mix["sources"]])
    state = {**state, "step": step, "counts": np.floor(step * batch * w).astype(np.int64).tolist()}
    times = []
    for _ in range(15):
        fresh = build_sampler(mix, seed=0, batch_size=batch)
        t0 = time.perf_counter()
        fresh.load_state_dict(state)
        fresh.next_batch()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def hf_sources(k: int, rows: int) -> dict:
    import datasets

    datasets.disable_progress_bars()
    return {
        f"s{i:04d}": datasets.Dataset.from_dict(
            {"text": [f"task {i} example {j}" for j in range(rows)], "label": list(range(rows))}
        )
        for i in range(k)
    }


def hf_interleave(sources: dict, seconds: float) -> tuple[float, tuple[float, float], int]:
    """(build seconds, (rows/s, rows/CPU-s), rows in the interleaved dataset)."""
    import datasets

    w = 1.0 / np.arange(1, len(sources) + 1)
    t0 = time.perf_counter()
    mixed = datasets.interleave_datasets(
        list(sources.values()),
        probabilities=(w / w.sum()).tolist(),
        seed=0,
        stopping_strategy="all_exhausted",
    )
    build = time.perf_counter() - t0
    it = iter(mixed)

    def some_rows() -> int:
        for _ in range(1000):
            next(it)
        return 1000

    return build, rate(some_rows, seconds), len(mixed)


def raremix_rows(
    sampler: MixtureSampler, tables: TableSources, as_dicts: bool
) -> Callable[[], int]:
    def one_batch() -> int:
        sources, indices = sampler.next_batch()
        rows = tables.rows(sampler.names, sources, indices)
        return len(table_rows(rows)) if as_dicts else rows.num_rows

    return one_batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 sources and short timings")
    parser.add_argument(
        "--sources",
        type=int,
        default=None,
        help="number of sources (default 1000; 100 with --quick)",
    )
    parser.add_argument("--batch", type=int, default=4096, help="global batch size for the sampler")
    args = parser.parse_args()
    k = args.sources or (100 if args.quick else 1000)
    seconds = 1.0 if args.quick else 3.0
    rows_per_source = 200

    table: list[tuple[str, str]] = []
    print(f"raremix sampler benchmark: {k} sources, Zipf weights, batch {args.batch}", flush=True)

    def show(name: str, r: tuple[float, float], unit: float = 1e6, suffix: str = " M") -> None:
        digits = 2 if unit > 1 else 0
        table.append(
            (
                name,
                f"{r[0] / unit:,.{digits}f}{suffix} ({r[1] / unit:,.{digits}f}{suffix} per CPU-s)",
            )
        )
        print(f"  {name}: {table[-1][1]}", flush=True)

    for mode in ("iid", "stratified"):
        for size, label in ((rows_per_source, "200-row"), (10**6, "10^6-row")):
            show(
                f"decisions/s, {mode}, {label} sources",
                decisions_per_second(k, size, mode, args.batch, seconds),
            )
    near, far = resume_ms(k, args.batch, 10), resume_ms(k, args.batch, 10**8)
    table.append(("resume + first batch at step 10", f"{near:.2f} ms"))
    table.append(("resume + first batch at step 10^8", f"{far:.2f} ms"))
    print(f"  resume at step 10: {near:.2f} ms, at step 10^8: {far:.2f} ms", flush=True)

    print(f"  building {k} in-memory HF datasets of {rows_per_source} rows ...", flush=True)
    sources = hf_sources(k, rows_per_source)
    build, hf_rate, hf_len = hf_interleave(sources, seconds=2 * seconds)
    t0 = time.perf_counter()
    tables = TableSources(sources)
    rm_build = time.perf_counter() - t0
    sampler = build_sampler(
        zipf_mixture(k, rows_per_source, "iid"), tables.sizes, seed=0, batch_size=args.batch
    )
    rm_arrow = rate(raremix_rows(sampler, tables, as_dicts=False), seconds)
    rm_dicts = rate(raremix_rows(sampler, tables, as_dicts=True), seconds)
    table.append(("interleave_datasets: build (all_exhausted)", f"{build:.2f} s ({hf_len:,} rows)"))
    show("interleave_datasets: rows/s (python dicts)", hf_rate, 1, "")
    table.append(("raremix: build (TableSources)", f"{rm_build:.2f} s"))
    show("raremix: rows/s (Arrow batches)", rm_arrow, 1, "")
    show("raremix: rows/s (python dicts)", rm_dicts, 1, "")
    for name, r in (("python dicts", rm_dicts), ("Arrow batches", rm_arrow)):
        ratio = (r[0] / hf_rate[0], r[1] / hf_rate[1])
        table.append(
            (f"speed ratio, rows as {name}", f"{ratio[0]:,.0f}× ({ratio[1]:,.0f}× per CPU-s)")
        )
    width = max(len(name) for name, _ in table)
    print(f"\n| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in table:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
