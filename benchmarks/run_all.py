"""Run every benchmark in benchmarks/, one subprocess each, printing each one's output.

    .venv/bin/python benchmarks/run_all.py                 # quick variants (`make bench`)
    .venv/bin/python benchmarks/run_all.py --full          # the real measurements (many minutes)
    .venv/bin/python benchmarks/run_all.py --only train_throughput --only walltime

A benchmark is any `benchmarks/*.py` but this file and `_*.py` (modules the benchmarks
import). Quick mode passes `--quick` to a script that has that flag; one that does not gets
its small arguments from `QUICK_ARGS` below (or runs in full). Exits 1 if any benchmark failed.
Speed targets are printed by each benchmark ("met" / "NOT met"); they do not fail the run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_ARGS: dict[str, list[str]] = {
    # Scripts without a --quick of their own (once they have one, it is used instead).
    "study_throughput": ["--runs", "2", "--set", "steps=3000"],  # 2 NumPy runs, not 8 longer
    "probes": ["--steps", "30", "--pairs", "1", "--every", "15"],
}


def benchmarks() -> list[str]:
    """Names (file stems) of the benchmark scripts, sorted."""
    return sorted(
        p.stem for p in HERE.glob("*.py") if p.stem != Path(__file__).stem and p.stem[0] != "_"
    )


def command(name: str, full: bool) -> list[str]:
    script = HERE / f"{name}.py"
    if full:
        args = []
    elif '"--quick"' in script.read_text():
        args = ["--quick"]
    else:
        args = QUICK_ARGS.get(name, [])
    return [sys.executable, str(script), *args]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="full runs instead of --quick")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args()
    names = benchmarks()
    chosen = [n.removesuffix(".py") for n in args.only] if args.only else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(names)}")

    results: list[tuple[str, int, float]] = []
    for name in chosen:
        cmd = command(name, args.full)
        shown = " ".join([Path(cmd[1]).relative_to(HERE.parent).as_posix(), *cmd[2:]])
        if args.list:
            print(shown)
            continue
        print(f"\n=== {shown}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=HERE.parent).returncode
        results.append((name, rc, time.perf_counter() - t0))

    if results:
        print("\n=== summary")
        for name, rc, wall in results:
            print(f"{name:<20} {'ok' if rc == 0 else f'FAILED (exit {rc})':<18} {wall:7.1f} s")
    if any(rc for _, rc, _ in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
