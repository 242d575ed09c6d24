"""The regime header: the paper's regime (declared) beside raremix's (computed) — PROTOCOL §7."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import cli
from raremix.config import load_config
from raremix.configbase import packaged_configs
from raremix.data import TaskData
from raremix.errors import RaremixError
from raremix.model import GPT
from raremix.studies.regime import PaperRegime, count_text, trained, yaml_regime
from tiny_configs import tiny_config

REPRODUCTIONS = (
    "injection",
    "strategies",
    "rarity-first",
    "structured-first",
    "decomposition",
    "distillation",
    "depth-width",
    "instructions",
    "voting",
    "theory",
    "scale-vs-mix",
)
STUDIES = packaged_configs("studies")


@pytest.mark.parametrize("name", REPRODUCTIONS)
def test_every_reproduction_declares_a_regime_that_validates(name: str) -> None:
    regime = yaml_regime(STUDIES[name])  # validated, and consistent with its hypotheses
    assert regime.paper is not None and regime.paper.source
    lines = regime.lines()
    assert lines[0].startswith("Paper: ") and lines[1].startswith("Here: ")
    assert regime.here.params and regime.here.tokens and regime.here.runs >= 1
    # a paradigm that differs is either bridged or every hypothesis is out of regime
    if regime.differs:
        assert regime.paper.bridge or len(regime.reasons) == regime.hypotheses > 0


def test_out_of_regime_declarations_and_the_header_agree() -> None:
    structured = yaml_regime(STUDIES["structured-first"])
    assert structured.differs and structured.paper and not structured.paper.bridge
    assert structured.hypotheses == len(structured.reasons) == 3
    assert "Paradigm differs: the paper's is RL post-training of a pretrained model" in (
        structured.paradigm_text()
    )
    assert "out of regime: Omni-Thinker's effect is from RL" in structured.paradigm_text()
    assert structured.compact().endswith("out of regime")
    instructions = yaml_regime(STUDIES["instructions"]).compact()
    assert instructions.startswith("paper: ? SFT pretrained · here: ") and "from scratch" in (
        instructions
    )
    # rarity-first bridges the paradigm (a base phase) but is out of regime by its design
    rarity = yaml_regime(STUDIES["rarity-first"])
    assert rarity.paper and rarity.paper.bridge and len(rarity.reasons) == 4
    assert "bridged · 4/4 out of regime (design)" in rarity.compact()
    assert yaml_regime(STUDIES["theory"]).paradigm_text().startswith("Paradigm: the same")


def test_a_paradigm_neither_bridged_nor_declared_out_of_regime_is_one_line(
    tmp_path: Path,
) -> None:
    text = STUDIES["structured-first"].read_text()
    assert text.count("regime: *rl") == 2
    bad = tmp_path / "sf.yaml"
    bad.write_text(text.replace("      regime: *rl\n", "", 1))  # one hypothesis left in regime
    with pytest.raises(RaremixError) as err:
        yaml_regime(bad)
    message = str(err.value)
    assert "\n" not in message and "regime.bridge" in message and "RL pretrained" in message


def test_raremixs_side_is_what_the_trainer_builds() -> None:
    cfg = load_config(data=tiny_config(steps=40, batch_size=8))
    data = TaskData(cfg, list(cfg.tasks))
    model = GPT(cfg.model.build(data.tokenizer.size, data.block_size))
    here = trained(cfg)
    assert here.params == sum(p.numel() for p in model.parameters())
    assert here.tokens == 40 * 8 * data.block_size
    assert (here.paradigm, here.pretrained) == ("supervised", False)


def test_counts_read_and_print_with_suffixes() -> None:
    paper = PaperRegime(
        source="x", params=["125M", "1.5B"], tokens=["1T"], paradigm="RL", pretrained=True
    )
    assert paper.params == [125_000_000, 1_500_000_000] and paper.tokens == [10**12]
    assert [count_text(n) for n in (384, 16_752, 4e9)] == ["384", "16.8k", "4B"]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("  paradigm: RL\n", "  paradigm: RLHF\n", "'regime.paradigm'"),
        ("  paradigm: RL\n", "  paradigm: RL\n  paramz: [7B]\n", "unknown key 'regime.paramz'"),
        ("  paradigm: RL\n", "  paradigm: RL\n  params: [7B, 1B]\n", "smaller value first"),
    ],
)
def test_a_bad_regime_field_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    old: str,
    new: str,
    needle: str,
) -> None:
    bad = tmp_path / "sf.yaml"
    bad.write_text(STUDIES["structured-first"].read_text().replace(old, new, 1))
    monkeypatch.chdir(tmp_path)
    result = cli(capsys, monkeypatch, "study", "run", str(bad), "--quick")
    assert result.code == 2 and result.err.count("\n") == 1 and needle in result.err
    assert not (tmp_path / "studies").exists()  # refused before any run


def test_study_list_shows_each_reproductions_regime(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "600")  # one row per study, no wrapping
    result = cli(capsys, monkeypatch, "study", "list")
    assert result.code == 0 and "regime (paper · here)" in result.out
    rows = {line.split("│")[1].strip(): line for line in result.out.splitlines() if "│" in line}
    for name in REPRODUCTIONS:
        assert yaml_regime(STUDIES[name]).compact() in rows[name]
    assert "paper: 20B SFT pretrained · here: " in rows["decomposition"]
    assert "│ —" in rows["demo"]  # not a reproduction
