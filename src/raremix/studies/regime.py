"""The regime a claim lives in: the paper's, declared, beside raremix's, computed (PROTOCOL §7).

A reproduction's YAML declares the paper's regime in a `regime:` block (`PaperRegime`:
source, model family, parameters, tokens, paradigm, pretrained or from scratch, and how
the study bridges a paradigm it does not share). It sits in the YAML, not in the `Study`
record, because it is part of the study's pre-registration: it travels with the
hypotheses (and their `regime:` reasons) into the study directory's `study.yaml`, and a
copy of a YAML that reproduces another paper declares that paper.

raremix's side is computed from the study's own configs (`here_regime`): the parameters of
every model a run trains and the tokens each run feeds it (steps × batch × block size, the
trainer's own count), over every run the study expands to. Its paradigm is a property of
the trainer: every `TrainConfig` starts from a random init and is scored on answer tokens,
so it is supervised training from scratch.

`check_regime` keeps the header and the declared outcomes consistent: where the paradigms
differ, the YAML either says how the study bridges them (`bridge`) or declares every
hypothesis `out of regime` (with its reason); otherwise it is a one-line error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from raremix.configbase import Config
from raremix.errors import RaremixError

if TYPE_CHECKING:
    from raremix.config import TrainConfig
    from raremix.studies.spec import StudySpec

Paradigm = Literal["pretraining", "supervised", "RL", "inference", "synthetic"]
PARADIGMS: dict[str, str] = {
    "pretraining": "pretraining (next-token loss on a corpus)",
    "supervised": "supervised training (loss on answers)",
    "RL": "RL post-training",
    "inference": "inference only (no training)",
    "synthetic": "a synthetic model trained by gradient descent",
}
"""Paradigm → how a header names it."""
_SHORT = {"pretraining": "pretraining", "RL": "RL", "inference": "inference", "synthetic": "toy"}

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_count(value: Any) -> Any:
    """'125M', '4B', '1.5T', '25k' or a number → an int (anything else is left to pydantic)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMbBtT]?)\s*", value)
        if not m:
            raise ValueError(f"'{value}' is not a count: write e.g. 125M, 4B, 1.5T or 25000")
        return round(float(m.group(1)) * _SUFFIX[m.group(2).lower()])
    return value


Count = Annotated[int, BeforeValidator(parse_count), Field(gt=0)]
"""A positive count, written as a number or with a k / M / B / T suffix."""


def count_text(n: float) -> str:
    """25_000 → '25k', 1.25e8 → '125M', 4e9 → '4B' (three significant digits at most)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.3g}"


def span_text(values: Iterable[float]) -> str:
    """'17k–407k' over the values (one value: '25k'; none: 'not stated')."""
    vals = sorted(set(values))
    if not vals:
        return "not stated"
    lo, hi = count_text(vals[0]), count_text(vals[-1])
    return lo if lo == hi else f"{lo}–{hi}"


def setting_text(paradigm: str, pretrained: bool) -> str:
    """'supervised training (loss on answers) of a pretrained model' / '… from scratch'."""
    return f"{PARADIGMS[paradigm]}{' of a pretrained model' if pretrained else ' from scratch'}"


def short_setting(paradigm: str, pretrained: bool) -> str:
    """'SFT pretrained', 'supervised from scratch', 'RL pretrained', 'pretraining from scratch'."""
    name = ("SFT" if pretrained else "supervised") if paradigm == "supervised" else _SHORT[paradigm]
    return f"{name} {'pretrained' if pretrained else 'from scratch'}"


class PaperRegime(Config):
    """The regime of the paper a study reproduces, as published (a study YAML's `regime:`)."""

    source: str = Field(min_length=1)
    """The paper, and where in it the regime is stated."""
    model: str = "not stated"
    """The model family (e.g. OLMo, Granite, a cross-encoder)."""
    params: list[Count] | None = Field(None, min_length=1, max_length=2)
    """Parameters: one value or [smallest, largest] (e.g. [4M, 4B]); null: not stated."""
    tokens: list[Count] | None = Field(None, min_length=1, max_length=2)
    """Training tokens per model: one value or [fewest, most]; null: not stated."""
    paradigm: Paradigm
    """pretraining, supervised (fine-tuning when pretrained), RL, inference or synthetic."""
    pretrained: bool
    """Whether the paper starts from a pretrained model (false: from scratch)."""
    bridge: str | None = None
    """Where the paradigm differs from raremix's: how the study bridges it (null: it does not,
    and every declared hypothesis is `out of regime`)."""

    @field_validator("params", "tokens")
    @classmethod
    def _ordered(cls, span: list[int] | None) -> list[int] | None:
        if span is not None and span != sorted(span):
            raise ValueError(f"{span} is not [smallest, largest]: write the smaller value first")
        return span

    def text(self) -> str:
        """One sentence: family, parameters, tokens, paradigm, source."""
        params = f"{span_text(self.params)} parameters" if self.params else "parameters not stated"
        tokens = f"{span_text(self.tokens)} tokens" if self.tokens else "tokens not stated"
        setting = setting_text(self.paradigm, self.pretrained)
        return f"{self.model}; {params}, {tokens}; {setting} — {self.source}."


@dataclass(frozen=True)
class Trained:
    """One model a run trains: its parameters and what one run feeds it."""

    params: int
    tokens: int
    """steps × batch × block size (the trainer's count); examples for a synthetic model."""
    paradigm: str = "supervised"
    pretrained: bool = False
    unit: str = "tokens"
    """'tokens', or 'examples' for a model that does not read tokens."""


ModelsFn = Callable[[dict[str, Any]], list["Trained"]]
"""One run's config (a dict) → the models that run trains (a `Study.models` reference)."""


def train_config_models(config: dict[str, Any]) -> list[Trained]:
    """The one model a `TrainConfig` run trains (the `Study.models` default)."""
    from raremix.config import load_config

    return [trained(load_config(data=config))]


def trained(cfg: TrainConfig) -> Trained:
    """A `TrainConfig`'s model as the trainer builds it: exact parameters, and
    steps × batch × block tokens (`steps.gpt` prices FLOPs on the same count)."""
    from raremix.data import TaskData
    from raremix.model import count_params

    data = TaskData(cfg, list(cfg.tasks))
    model = cfg.model.build(data.tokenizer.size, data.block_size)
    return Trained(count_params(model), cfg.steps * cfg.batch_size * data.block_size)


@dataclass(frozen=True)
class HereRegime:
    """raremix's side of the header, computed from a study's runs."""

    params: list[int]
    """Distinct parameter counts of the models the study trains, ascending."""
    tokens: list[int]
    """Distinct per-run token (or example) counts, ascending."""
    unit: str
    paradigm: str
    pretrained: bool
    runs: int

    @classmethod
    def of(cls, models: list[Trained], runs: int) -> HereRegime:
        """Pool the models of a study's runs (one paradigm: the first model's)."""
        if not models:
            raise RaremixError("the study trains no model: give it at least one run")
        first = models[0]
        return cls(
            sorted({m.params for m in models}),
            sorted({m.tokens for m in models}),
            first.unit,
            first.paradigm,
            first.pretrained,
            runs,
        )

    def text(self) -> str:
        """One sentence: parameters, tokens per run, paradigm."""
        return (
            f"{span_text(self.params)} parameters ({len(self.params)} distinct "
            f"model{'s' if len(self.params) > 1 else ''}), {span_text(self.tokens)} {self.unit} "
            f"per run{' (steps × batch × block size)' if self.unit == 'tokens' else ''}, "
            f"{setting_text(self.paradigm, self.pretrained)}; {self.runs} "
            f"run{'s' if self.runs > 1 else ''}."
        )


@dataclass(frozen=True)
class Regime:
    """Both sides of a study's regime header, and the out-of-regime reasons it declares."""

    paper: PaperRegime | None
    here: HereRegime
    reasons: list[str]
    """The `regime:` reason of each declared hypothesis that has one (out of regime)."""
    hypotheses: int = 0
    """How many hypotheses the study declares."""

    @property
    def out_of_regime(self) -> list[str]:
        """The distinct out-of-regime reasons, in declaration order."""
        return list(dict.fromkeys(self.reasons))

    @property
    def differs(self) -> bool:
        """Whether the paper's paradigm (or pretrained start) is not raremix's."""
        p = self.paper
        return p is not None and (p.paradigm, p.pretrained) != (
            self.here.paradigm,
            self.here.pretrained,
        )

    def scale_text(self) -> str:
        """'Scale: the paper's smallest model is 1,257× raremix's largest …' (when both are known)."""
        if self.paper is None or not self.paper.params:
            return ""
        ratio = self.paper.params[0] / self.here.params[-1]
        if ratio <= 1:
            return "Scale: the paper's smallest model is no larger than raremix's largest."
        return (
            f"Scale: the paper's smallest model is {ratio:,.0f}× raremix's largest "
            f"(10^{math.log10(ratio):.1f}); a toy-scale result is a statement about the toy scale."
        )

    def paradigm_text(self) -> str:
        """'Paradigm: the same.' / 'Paradigm differs: … — bridged: …' / '… — out of regime: …'."""
        p = self.paper
        if p is None:
            return ""
        if not self.differs:
            return f"Paradigm: the same ({setting_text(p.paradigm, p.pretrained)})."
        head = (
            f"Paradigm differs: the paper's is {setting_text(p.paradigm, p.pretrained)}, "
            f"raremix's {setting_text(self.here.paradigm, self.here.pretrained)}"
        )
        if p.bridge:
            return f"{head} — bridged: {p.bridge.strip()}."
        return f"{head} — out of regime: {'; '.join(self.out_of_regime)}."

    def lines(self) -> list[str]:
        """The header as sentences: paper, here, paradigm, scale, and design reasons."""
        out = [
            f"Paper: {self.paper.text()}"
            if self.paper
            else "Paper: none declared (not a reproduction).",
            f"Here: {self.here.text()}",
        ]
        out += [t for t in (self.paradigm_text(), self.scale_text()) if t]
        if self.out_of_regime and (not self.differs or (self.paper and self.paper.bridge)):
            out.append(
                "Out of regime by design (each such hypothesis's outcome is `out of regime`): "
                + "; ".join(self.out_of_regime)
                + "."
            )
        return out

    def compact(self) -> str:
        """One cell for `raremix study list`: 'paper: 20B SFT pretrained · here: 17k–407k
        supervised from scratch · bridged'."""
        if self.paper is None:
            return "—"
        p = self.paper
        paper = f"{span_text(p.params or [])} {short_setting(p.paradigm, p.pretrained)}"
        here = f"{span_text(self.here.params)} {short_setting(self.here.paradigm, self.here.pretrained)}"
        tail = ""
        if self.differs:
            tail = " · bridged" if p.bridge else " · out of regime"
        if self.reasons and (p.bridge or not self.differs):
            tail += f" · {len(self.reasons)}/{self.hypotheses} out of regime (design)"
        return f"paper: {paper.replace('not stated', '?')} · here: {here}{tail}"


def check_regime(regime: Regime, where: str) -> None:
    """One line unless the header and the declarations agree: a paradigm that differs is
    bridged, or every declared hypothesis is out of regime (and there is one)."""
    p = regime.paper
    if p is None or not regime.differs or p.bridge:
        return
    if regime.hypotheses and len(regime.reasons) == regime.hypotheses:
        return
    raise RaremixError(
        f"{where}: regime: the paper's paradigm ({short_setting(p.paradigm, p.pretrained)}) is "
        f"not raremix's ({short_setting(regime.here.paradigm, regime.here.pretrained)}): say how "
        "the study bridges it (regime.bridge) or declare every hypothesis out of regime "
        "(hypotheses.tests[].regime)"
    )


def runs_regime(
    paper: PaperRegime | None,
    configs: list[dict[str, Any]],
    models: ModelsFn,
    declared: list[str | None],
) -> Regime:
    """The header of runs with these configs (`models` lists what each trains; configs that
    differ only in seed are counted once), beside `paper`; `declared` holds each declared
    hypothesis's out-of-regime reason (None: in regime)."""
    seen: dict[str, list[Trained]] = {}
    pooled: list[Trained] = []
    for config in configs:
        rest = {k: v for k, v in config.items() if k != "seed"}
        key = json.dumps(rest, sort_keys=True, default=str)
        if key not in seen:
            seen[key] = models(config)
        pooled += seen[key]
    reasons = [" ".join(r.split()) for r in declared if r]
    return Regime(paper, HereRegime.of(pooled, len(configs)), reasons, len(declared))


def spec_regime(spec: StudySpec, models: ModelsFn | None = None) -> Regime:
    """The regime header of a study spec: its declared `regime` beside the models its runs
    train (`models`: default the study record's)."""
    from raremix.studies.registry import study_record
    from raremix.studies.spec import expand

    tests = spec.hypotheses.tests if spec.hypotheses else []
    return runs_regime(
        spec.regime,
        [run.config for run in expand(spec)],
        models or study_record(spec.analysis).models_fn(),
        [h.regime for h in tests],
    )


def lab_regime(data: dict[str, Any], models: ModelsFn, where: str) -> Regime:
    """The header of an in-process lab: its YAML (or recorded config) with a `regime` key
    is one computation whose models `models` lists."""
    from raremix.configbase import load

    raw = data.get("regime")
    paper = load(PaperRegime, raw, f"{where}: regime") if raw else None
    return Regime(paper, HereRegime.of(models(data), 1), [])


def yaml_regime(path: Path) -> Regime:
    """The regime header of a study YAML (a runner study, or an in-process lab whose
    record's `models` reads the whole YAML), checked for consistency."""
    from raremix.configbase import read_yaml
    from raremix.studies.registry import study_record
    from raremix.studies.spec import load_spec

    data = read_yaml(path)
    analysis = data.get("analysis") if isinstance(data, dict) else None
    record = study_record(str(analysis) if analysis else None)
    if record.execute and isinstance(data, dict):  # one in-process computation, no runs
        regime = lab_regime(data, record.models_fn(), str(path))
    else:
        spec = load_spec(path)
        regime = spec_regime(spec, record.models_fn())
    check_regime(regime, str(path))
    return regime
