"""Wall time of a packaged study, end to end: the demo's (and the README's) number.

    .venv/bin/python benchmarks/walltime.py                  # raremix study run demo
    .venv/bin/python benchmarks/walltime.py --quick          # its quick variant (a smoke test)
    .venv/bin/python benchmarks/walltime.py --study scale-vs-mix --study injection

Runs `python -m raremix study run NAME --out TMP` in a fresh subprocess (interpreter start,
imports, the runner's worker processes, training, the store and the study's analyzer all
count) into a new temporary directory, so nothing is skipped as already done, and prints
the wall time. The demo's target is its own promise: about five minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {"demo": 300.0}
"""Wall-time targets of the full (not --quick) studies, where the study promises one."""


def time_study(name: str, quick: bool, workers: int | None, echo: bool) -> tuple[float, str, int]:
    """(seconds, the runner's summary line, exit code) of one `raremix study run`."""
    if Path(name).suffix in (".yaml", ".yml") or Path(name).exists():
        name = str(Path(name).resolve())  # the study runs from a temporary directory
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "raremix", "study", "run", name, "--out", f"{tmp}/study"]
        cmd += ["--quick"] * quick + (["--workers", str(workers)] if workers else [])
        t0 = time.perf_counter()
        env = {**os.environ, "COLUMNS": "200"}  # rich: keep the summary line on one line
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
        wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if echo or proc.returncode:
        print(out.rstrip())
    done = (ln for ln in out.splitlines() if re.search(r"\d+ done, \d+ skipped", ln))
    summary = next(done, "").split("; results in")[0].strip()  # the directory is gone
    return wall, summary, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--study", action="append", help="packaged study name or YAML path (default: demo)")
    add("--quick", action="store_true", help="the studies' quick variants")
    add("--workers", type=int, help="parallel runs (default: the study's, else one per core)")
    add("--repeat", type=int, default=1, help="time each study this many times (median)")
    add("--verbose", action="store_true", help="print each study's own output")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(os.sched_getaffinity(0))} cores, load average {load}")
    any_failed = False
    for name in args.study or ["demo"]:
        label = f"{Path(name).stem}{' --quick' if args.quick else ''}"
        times, failed = [], False
        for _ in range(args.repeat):
            wall, summary, rc = time_study(name, args.quick, args.workers, args.verbose)
            failed |= rc != 0
            times.append(wall)
            print(f"  {label}: {wall:.1f} s ({summary or f'exit code {rc}'})", flush=True)
        best = statistics.median(times)
        line = f"{label}: wall time: {best:.1f} s ({best / 60:.1f} min)"
        target = None if args.quick or failed else TARGETS_S.get(name)
        if failed:
            line += "; FAILED (output above)"
        elif target:
            met = "met" if best <= target else "NOT met"
            line += f"; ratio to the {target:.0f} s target: {best / target:.2f} (≤ 1: {met})"
        print(line)
        any_failed |= failed
    if any_failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
