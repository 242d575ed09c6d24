"""Probe overhead: the same training run with and without probes, interleaved, in one process.

    python benchmarks/probes.py                  # the lab config, 25k model, 600 steps, 3 pairs
    python benchmarks/probes.py --size 200k --steps 400 --pairs 2 --every 100

Prints each run's wall and CPU time and the overhead ratio (with probes / without) three
ways: per-pair wall time, CPU time, and wall time against the probed runs' own time
outside the probes. Runs alternate (plain, probed, plain, …) so
drifting machine load hits both arms alike; one thread, as study workers use.
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

from raremix.config import load_config
from raremix.trainer import train

LAB = Path(__file__).resolve().parents[1] / "src" / "raremix" / "configs" / "lab.yaml"


def run(config: dict[str, Any], out: Path) -> tuple[float, float, float]:
    """(wall seconds of train(), its CPU seconds, wall seconds inside probes)."""
    t0, c0 = time.perf_counter(), time.process_time()
    state = train(load_config(data=config), out, resume=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, float(state.facts.get("probe_seconds", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="25k", help="model ladder rung")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--pairs", type=int, default=3, help="plain/probed pairs to run")
    ap.add_argument(
        "--every", type=int, default=None, help="probe cadence (default: with each eval)"
    )
    ap.add_argument("--batch", type=int, default=None, help="probe examples per task")
    args = ap.parse_args()
    torch.set_num_threads(1)

    base = yaml.safe_load(LAB.read_text())
    base.update(steps=args.steps, threads=1, checkpoint_every=args.steps, device="cpu")
    base["model"] = {"size": args.size}
    probes: dict[str, Any] = {}
    if args.every is not None:
        probes["every"] = args.every
    if args.batch is not None:
        probes["batch"] = args.batch
    arms = {"plain": base, "probed": {**base, "probes": probes}}
    print(
        f"lab config, model {args.size}, {args.steps} steps, batch {base['batch_size']}, "
        f"eval every {base['eval_every']}, probes {probes or 'default (with each eval)'}"
    )

    times: dict[str, list[float]] = {"plain": [], "probed": []}
    cpus: dict[str, list[float]] = {"plain": [], "probed": []}
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        run(base | {"steps": 20}, Path(tmp) / "warmup")
        for i in range(args.pairs):
            for arm, cfg in arms.items():
                wall, cpu, probe_s = run(cfg, Path(tmp) / f"{arm}{i}")
                times[arm].append(wall)
                cpus[arm].append(cpu)
                if arm == "probed":
                    inside.append(probe_s / wall)
                print(
                    f"  pair {i} {arm:6s} {wall:7.2f} s wall {cpu:7.2f} s cpu"
                    + (f"  (probes {probe_s:.2f} s)" if probe_s else "")
                )
    ratios = [p / q for p, q in zip(times["probed"], times["plain"], strict=True)]
    cpu = statistics.median(cpus["probed"]) / statistics.median(cpus["plain"])
    own = statistics.median(1 / (1 - f) for f in inside)
    print(
        f"overhead ratio, wall time (probed / plain, per pair): median {statistics.median(ratios):.3f} "
        f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    print(f"overhead ratio, CPU time (median probed / median plain): {cpu:.3f}")
    print(f"overhead ratio, within the probed runs (wall / (wall - probe time)): {own:.3f}")
    print("(on a shared machine the wall-time pairs swing with other load; the CPU-time and")
    print(" within-run ratios are the steadier estimates of what probes add)")


if __name__ == "__main__":
    main()
