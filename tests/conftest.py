"""Shared fixtures: tiny, fast training configs."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

# one thread per test process: pytest-xdist runs two of them side by side on CI's 2 cores
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


from tiny_configs import tiny_config  # noqa: E402


@pytest.fixture
def tiny() -> dict[str, Any]:
    return tiny_config()
