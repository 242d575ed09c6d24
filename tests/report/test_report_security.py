"""A report reads only its study's files and shows the study's text as text, never markup."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tiny_study import fake_study

from cli_runner import cli
from raremix.errors import RaremixError
from raremix.report import build_report
from raremix.report.content import Report, Section
from raremix.report.render import to_markdown
from raremix.studies.analysis import Verdict

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[click](javascript:alert(1))"


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A fake study, analysed and reported once (figures in place)."""
    root = fake_study(tmp_path / "study", seeds=(0,))
    build_report(root)
    return root


def _edit_verdict(study: Path, **fields: object) -> None:
    path = study / "analysis" / "verdict.json"
    verdict = json.loads(path.read_text())
    verdict.update(fields)
    path.write_text(json.dumps(verdict))


def _figure(study: Path, file: str) -> None:
    _edit_verdict(study, figures=[{"file": file, "caption": "frontier"}])


def _report_error(study: Path) -> str:
    before = sorted(p.name for p in (study / "figures").iterdir())
    with pytest.raises(RaremixError) as err:
        build_report(study)
    assert sorted(p.name for p in (study / "figures").iterdir()) == before  # nothing copied
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("where", ["relative", "absolute", "link"])
def test_a_figure_outside_the_study_is_refused(study: Path, tmp_path: Path, where: str) -> None:
    secret = tmp_path / "secret.png"  # even a real PNG: it is not the study's
    secret.write_bytes((study / "figures" / "frontier.png").read_bytes())
    if where == "relative":
        _figure(study, "../../secret.png")
    elif where == "absolute":
        _figure(study, str(secret))
    else:
        (study / "analysis" / "figures" / "leak.png").symlink_to(secret)
        _figure(study, "figures/leak.png")
    message = _report_error(study)
    assert "outside the study folder" in message and "verdict.json" in message


def test_etc_passwd_via_the_cli_is_one_line_exit_2(
    study: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _figure(study, "../../../../../../../../etc/passwd")
    result = cli(capsys, monkeypatch, "report", str(study))
    assert result.code == 2 and result.err.count("\n") == 1
    assert "outside the study folder" in result.err and not (study / "figures" / "passwd").exists()
    assert "root:" not in (study / "report.md").read_text()


def test_a_figure_that_is_no_png_is_refused(study: Path) -> None:
    _figure(study, "../study.yaml")  # inside the study, but not an image
    assert "is not a PNG image" in _report_error(study)


def test_a_garbled_verdict_is_one_line(study: Path) -> None:
    path = study / "analysis" / "verdict.json"
    good = path.read_text()
    path.write_text('{"study": "scale-vs-mix", "titl')
    assert "verdict.json is unreadable" in _report_error(study)
    path.write_text(good)
    _figure(study, None)  # type: ignore[arg-type]
    assert "a figure needs a file and a caption" in _report_error(study)


def test_markup_in_task_names_and_labels_is_escaped(tmp_path: Path) -> None:
    root = fake_study(tmp_path / "study", seeds=(0,), tasks=("compare", "copy", IMG))
    build_report(root)  # analyses the study: the task name reaches the report's text
    _edit_verdict(
        root,
        headline=f"headline {SCRIPT}",
        lines=[f"a finding {IMG}", f"a link {LINK}"],
        table={"columns": ["group", SCRIPT], "rows": [[IMG, "1|2"]]},
    )
    html_path, md_path = build_report(root)
    html, md = html_path.read_text(), md_path.read_text()
    assert "<script" not in html and "<img src=x" not in html
    assert re.search(r"(?<!\\)<(?!/?details>|summary>|/summary>)", md) is None  # no raw tag
    assert "[click](" not in md  # no link; in HTML, Markdown link syntax is plain text anyway
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        and "&lt;img src=x onerror=alert(1)&gt;" in html
    )
    # Markdown: every '<' from the study is backslash-escaped, so it renders as written
    assert r"\<script\>alert(1)\</script\>" in md and r"\<img src=x onerror=alert(1)\>" in md
    assert r"\[click\](javascript:alert(1))" in md
    assert md.count(IMG.replace("<", r"\<").replace(">", r"\>")) >= 3  # about, table, finding


def test_a_backtick_fence_in_the_config_cannot_close_the_yaml_block() -> None:
    config = f"note: |\n  ```\n  {SCRIPT}\n  ````\n"  # a config string with fences in it
    section = Section("Base run config", details=("the base config </summary>", config))
    md = to_markdown(Report("r", Verdict(study="x", title="t", headline="h"), [section]))
    block = md.split("<details>", 1)[1]
    assert "</summary></summary>" not in block and "&lt;/summary&gt;" in block
    fence = re.search(r"(`+)yaml\n", block)
    assert fence is not None and len(fence.group(1)) == 5  # longer than any run inside
    assert block.count(fence.group(1)) == 2 and SCRIPT in block.split(fence.group(1))[1]
