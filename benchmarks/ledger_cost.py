"""Interference-ledger overhead: the lab run with and without `ledger:`, interleaved, one process.

    python benchmarks/ledger_cost.py                       # 25k and 200k, 400 steps, 2 pairs each
    python benchmarks/ledger_cost.py --sizes 100k --every 5
    python benchmarks/ledger_cost.py --quick               # 25k, 40 steps, 1 pair (CI smoke)

For each rung prints both arms' wall time, the ratio (with ledger / without, median over
pairs) against the ≤ 1.15 target at the ledger's default cadence, and whether the
training rows (every metric row but `ledger/*`) are bit-identical between the arms.
Runs alternate (plain, ledger, plain, …) so drifting machine load hits both alike; one
thread, as study workers use. The lab config's probes are off in both arms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from raremix.callbacks.ledger import Ledger
from raremix.config import load_config
from raremix.results.rows import load_rows
from raremix.trainer import train

LAB = Path(__file__).resolve().parents[1] / "src" / "raremix" / "configs" / "lab.yaml"
TARGET = 1.15
DEFAULT_EVERY = Ledger.model_fields["every"].default


def run(config: dict[str, Any], out: Path) -> tuple[float, float, list[dict[str, Any]]]:
    """(wall seconds of train(), seconds inside the ledger, the run's non-ledger rows)."""
    t0 = time.perf_counter()
    state = train(load_config(data=config), out, resume=False)
    wall = time.perf_counter() - t0
    rows = [r for r in load_rows(out / "metrics.jsonl") if not r["metric"].startswith("ledger/")]
    return wall, float(state.facts.get("ledger_seconds", 0.0)), rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["25k", "200k"], help="model ladder rungs")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--pairs", type=int, default=2, help="plain/ledger pairs per rung")
    ap.add_argument("--every", type=int, default=DEFAULT_EVERY, help="ledger cadence")
    ap.add_argument("--quick", action="store_true", help="25k, 40 steps, 1 pair")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.steps, args.pairs = ["25k"], 40, 1
    torch.set_num_threads(1)

    base = yaml.safe_load(LAB.read_text())
    base.update(steps=args.steps, threads=1, checkpoint_every=args.steps, device="cpu")
    base["eval_every"] = max(1, args.steps // 4)
    base.pop("probes", None)
    print(
        f"lab config without probes, {args.steps} steps, batch {base['batch_size']}, "
        f"ledger every {args.every} (default {DEFAULT_EVERY}), {args.pairs} pair(s) per rung; "
        "wall times on a shared machine: read the ratio, not the seconds"
    )
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        run(base | {"steps": 10}, Path(tmp) / "warmup")
        for size in args.sizes:
            plain = base | {"model": {"size": size}}
            arms = {"plain": plain, "ledger": plain | {"ledger": {"every": args.every}}}
            walls: dict[str, list[float]] = {"plain": [], "ledger": []}
            shares: list[float] = []  # the ledger's own seconds / its run's wall time
            identical = True
            for i in range(args.pairs):
                rows = {}
                for arm, cfg in arms.items():
                    # one directory name for both arms: the run id (in every row) is its name
                    wall, inside, rows[arm] = run(cfg, Path(tmp) / arm / f"{size}-{i}")
                    walls[arm].append(wall)
                    if arm == "ledger":
                        shares.append(inside / wall)
                    extra = f"  (ledger {inside:.2f} s)" if inside else ""
                    print(f"  {size} pair {i} {arm:6s} {wall:7.2f} s wall{extra}")
                identical = identical and rows["plain"] == rows["ledger"]
            ratio = statistics.median(
                a / b for a, b in zip(walls["ledger"], walls["plain"], strict=True)
            )
            worst = max(worst, ratio)
            print(
                f"{size}: ratio ledger/plain wall time: {ratio:.3f} "
                f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}); ledger's own "
                f"time {100 * statistics.median(shares):.1f}% of its run; "
                f"training rows bit-identical: {'yes' if identical else 'NO'}"
            )
    print(f"worst ratio: {worst:.3f}")


if __name__ == "__main__":
    main()
