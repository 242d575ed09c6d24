"""Wall time of analysing a study: `raremix report` on a 48-run study never analysed.

    .venv/bin/python benchmarks/analysis_speed.py            # 4 groups × 12 seeds = 48 runs
    .venv/bin/python benchmarks/analysis_speed.py --quick    # 4 groups × 2 seeds (a smoke test)

Writes a scale-vs-mix study store of hand-made curves (tests/report/tiny_study.py: 11
evaluations × 3 tasks per run, with held-out n and baselines), then times
`python -m raremix report DIR` in a fresh subprocess: interpreter start, imports, the one
store read, the verdict, every figure and the HTML/Markdown report all count. The target
(issue 14) is under 10 s on two CPU cores for 48 runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))  # the test suite's fake-study writer
TARGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds per group, not 12")
    args = parser.parse_args()
    import tiny_study

    seeds = tuple(range(2 if args.quick else 12))
    with tempfile.TemporaryDirectory() as tmp:
        study = tiny_study.fake_study(Path(tmp) / "study", seeds=seeds, evidence=True)
        cmd = [sys.executable, "-m", "raremix", "report", str(study)]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds barely move when other jobs share the cores; wall time does
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"raremix report failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    runs = 4 * len(seeds)
    met = "met" if wall < TARGET_S else "NOT met"
    print(
        f"raremix report on a {runs}-run study (never analysed), fresh process: {wall:.1f} s "
        f"wall, {cpu:.1f} s CPU (load average {load:.1f} at start)"
    )
    print(
        f"ratio wall / {TARGET_S:.0f} s target: {wall / TARGET_S:.2f} — target < 10 s for "
        f"48 runs on 2 cores: {met if not args.quick else 'n/a (quick)'}"
    )


if __name__ == "__main__":
    main()
