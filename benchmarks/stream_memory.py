"""Read a stream of task-tagged JSONL far larger than memory, with bounded memory.

    .venv/bin/python benchmarks/stream_memory.py              # 0.2 GB of logical rows
    .venv/bin/python benchmarks/stream_memory.py --full       # 10 GB
    .venv/bin/python benchmarks/stream_memory.py --quick      # 20 MB, a few seconds

The rows are generated lazily by a thread writing into a named pipe (`rows.jsonl.gz`, or
plain / zstd with --compress): nothing is stored on disk, and `raremix.tagged.stream_tagged`
reads the pipe like a file, checking every row. Prints rows/s, MB/s of logical JSONL,
peak RSS (resource.getrusage) before and after, and the ratio of the RSS growth to the
bytes read. Target: the growth stays under 200 MB whatever the size (met / NOT met).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from raremix.tagged import stream_tagged

TARGET_MB = 200
TASKS = [f"skill_{k}" for k in range(8)]


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def generate(out: IO[bytes], logical_bytes: int) -> int:
    """Write Zipf-tagged rows until `logical_bytes` of JSONL are written; return the rows."""
    n = written = 0
    block: list[bytes] = []
    while written < logical_bytes:
        task = TASKS[min(int(1 / ((n * 0.618034) % 1 + 1e-9) ** 0.5) - 1, 7)]  # a long tail
        line = (
            json.dumps(
                {
                    "task": task,
                    "prompt": f"user: call the tool for request {n}",
                    "response": f'{{"id": {n}}}',
                }
            ).encode()
            + b"\n"
        )
        block.append(line)
        written += len(line)
        n += 1
        if len(block) == 4096:
            out.write(b"".join(block))
            block = []
    out.write(b"".join(block))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=0.2, help="logical gigabytes of JSONL to read")
    ap.add_argument("--full", action="store_true", help="10 GB")
    ap.add_argument("--quick", action="store_true", help="20 MB (the smoke test)")
    ap.add_argument("--compress", choices=["gz", "zst", "none"], default="gz")
    args = ap.parse_args()
    gb = 10.0 if args.full else 0.02 if args.quick else args.gb
    logical = int(gb * 1e9)
    suffix = {"gz": ".jsonl.gz", "zst": ".jsonl.zst", "none": ".jsonl"}[args.compress]
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Path(tmp) / f"rows{suffix}"
        os.mkfifo(pipe)
        made: list[int] = []

        def writer() -> None:
            with pipe.open("wb") as raw:
                if args.compress == "gz":
                    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as z:
                        made.append(generate(z, logical))
                elif args.compress == "zst":
                    import zstandard

                    with zstandard.ZstdCompressor(level=1).stream_writer(raw) as zw:
                        made.append(generate(zw, logical))  # type: ignore[arg-type]
                else:
                    made.append(generate(raw, logical))

        stream = stream_tagged(pipe)
        before = peak_rss_mb()
        thread = threading.Thread(target=writer, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        rows = chunks = 0
        for chunk in stream:
            rows += chunk.num_rows
            chunks += 1
        seconds = time.perf_counter() - t0
        thread.join()
    after = peak_rss_mb()
    assert rows == made[0] == stream.rows_read, (rows, made, stream.rows_read)  # none dropped
    growth = after - before
    print(
        f"read {rows:,} rows ({gb:g} GB of logical JSONL, {args.compress}) in {chunks:,} chunks, {seconds:.1f} s"
    )
    print(f"rows/s: {rows / seconds:,.0f}   MB/s (logical): {logical / 1e6 / seconds:,.1f}")
    print(f"peak RSS: {before:,.0f} MB before reading, {after:,.0f} MB after (+{growth:,.0f} MB)")
    print(f"ratio peak RSS growth / bytes read: {growth * 1e6 / logical:.4f}")
    print(f"rows per task: {stream.counts()}")
    print(f"target RSS growth < {TARGET_MB} MB: {'met' if growth < TARGET_MB else 'NOT met'}")


if __name__ == "__main__":
    main()
