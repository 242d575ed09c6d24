"""A real failed write for the tests: the process's file-size limit (RLIMIT_FSIZE).

Past the limit the kernel fails `write` with EFBIG ("File too large"), exactly as a full
disk fails it with ENOSPC, in Python and in native code (safetensors) alike; no mock.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

resource = pytest.importorskip("resource")  # POSIX only


@contextmanager
def file_size_limit(max_bytes: int) -> Iterator[None]:
    """No file of this process may grow past `max_bytes` inside the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # the kernel also sends SIGXFSZ, which would kill the test process: ignore it, keep EFBIG
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)
