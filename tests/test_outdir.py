"""Small run files are written atomically, and a failed write is one line that keeps the old file."""

from __future__ import annotations

from pathlib import Path

import pytest

from limits import file_size_limit
from raremix.errors import RaremixError
from raremix.outdir import write_file


def test_a_failed_write_keeps_the_old_file_and_is_one_line(tmp_path: Path) -> None:
    path = write_file(tmp_path / "summary.json", '{"step": 10}', "run summary")
    with file_size_limit(64), pytest.raises(RaremixError, match=r"run summary .*cannot write it"):
        write_file(path, "x" * 4096, "run summary")  # past the limit: EFBIG, as a full disk
    assert path.read_text() == '{"step": 10}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_a_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(RaremixError, match="cannot write it") as err:
        write_file(tmp_path / "f" / "meta.json", "{}", "run record")
    assert "\n" not in str(err.value)
