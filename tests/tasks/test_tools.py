"""The function-calling language: answer formats, the sub-tasks agree with the umbrella,
the verifier, and held-out tools and compositions that never reach training."""

from __future__ import annotations

import re

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.tasks import make_task
from raremix.tasks.tools import (
    HELDOUT_COMPOSITIONS,
    HELDOUT_TOOLS,
    SUBTASKS,
    VERBS,
    novelty,
    plan,
)

N = "[kmnprstw]{2}"
CALL = rf"{N}\(\d\)"
ANSWER = {
    "fcall": rf"{CALL}|{CALL},{CALL}|{N}\({CALL}\)|{CALL}>{N}",
    "fnest": rf"{N}\({CALL}\)",
    "fchain": rf"{CALL}>{N}",
    "fpar": rf"{CALL},{CALL}",
    "fnext": CALL,
    "fname": rf"{N}(,{N})?",
    "fparam": r"\d(,\d)?",
    "fresp": r"\d(,\d)?",
}
REQUEST = {"fnest": r"[a-h]\([a-h]\d\)", "fchain": r"[a-h]\d>[a-h]", "fpar": r"[a-h]\d\+[a-h]\d"}
TASKS = ["fcall", *SUBTASKS]


def names_listed(x: str) -> list[str]:
    return [e[1:] for e in x.partition(":")[0].split(",")]


@pytest.mark.parametrize("name", TASKS)
def test_every_answer_has_its_task_format(name: str) -> None:
    task = make_task(name, 3)
    ex = task.generate(np.arange(300), seed=2, split="train")
    for x, y in zip(ex.inputs, ex.answers, strict=True):
        catalogue, _, request = x.partition(":")
        assert re.fullmatch(r"[a-h][kmnprstw]{2}(,[a-h][kmnprstw]{2}){2}", catalogue), x
        assert re.fullmatch(ANSWER[name], y), (x, y)
        if name in REQUEST:
            assert re.fullmatch(REQUEST[name], request), x
        if name == "fnext":  # the asked verb has no tool; the answer calls its sibling's
            verbs = [e[0] for e in catalogue.split(",")]
            assert request[0] not in verbs and VERBS[VERBS.index(request[0]) ^ 1] in verbs


def test_known_requests_and_their_answers() -> None:
    cases = {  # a: +1, c: 2x, f: 9 - x; b is a's sibling
        "akm,crt:a3": ("km(3)", "km", "3", "4"),
        "akm,crt:a3+c4": ("km(3),rt(4)", "km,rt", "3,4", "4,8"),
        "akm,crt:a(c4)": ("km(rt(4))", "km,rt", "4", "9"),
        "akm,crt:c4>a": ("rt(4)>km", "rt,km", "4", "9"),
        "akm,crt:b3": ("km(3)", "km", "3", "4"),
        "fkm,crt:c(f2)": ("rt(km(2))", "rt,km", "2", "4"),
    }
    for x, (call, names, args, results) in cases.items():
        ref = {t: make_task(t).reference([x])[0] for t in ("fname", "fparam", "fresp")}
        assert (plan(x).call, ref["fname"], ref["fparam"], ref["fresp"]) == (
            call,
            names,
            args,
            results,
        ), x
        assert make_task("fcall").verify([x], [call]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_subtasks_agree_with_the_umbrella(seed: int) -> None:
    inputs = make_task("fcall").generate(np.arange(400), seed, "heldout").inputs
    calls = [plan(x).call for x in inputs]
    names = make_task("fname").reference(inputs)
    args = make_task("fparam").reference(inputs)
    for call, n, a in zip(calls, names, args, strict=True):
        assert re.findall("[kmnprstw]{2}", call) == n.split(",")
        assert re.findall(r"\d", call) == a.split(",")


def test_verify_accepts_either_order_of_parallel_calls_and_rejects_corruptions() -> None:
    fcall, fpar = make_task("fcall"), make_task("fpar")
    x = "akm,crt:a3+c4"
    assert fcall.verify([x] * 2, ["km(3),rt(4)", "rt(4),km(3)"]).all()
    assert fpar.verify([x] * 2, ["km(3),rt(4)", "rt(4),km(3)"]).all()
    bad = ["km(4),rt(3)", "km(3)", "km(3),rt(4),", "rt(3),km(4)", "km(3)rt(4)", "", None]
    assert not fcall.verify([x] * len(bad), bad).any()  # type: ignore[list-item]
    nested = "akm,crt:a(c4)"
    wrong = ["rt(km(4))", "km(rt(4)", "rt(4)>km", "km(4)", "km(rt(5))"]
    assert not fcall.verify([nested] * len(wrong), wrong).any()
    assert not fcall.verify(["akm,crt:b3"], ["km(3)x"]).any()  # next-best: exact call only
    assert not make_task("fnext").verify(["akm,crt:b3"], ["rt(3)"]).any()


def test_parallel_targets_come_in_both_orders() -> None:
    ex = make_task("fpar").generate(np.arange(400), seed=0, split="train")
    first_is_request_order = [y == plan(x).call for x, y in zip(ex.inputs, ex.answers, strict=True)]
    assert 0.3 < np.mean(first_is_request_order) < 0.7


@pytest.mark.parametrize("name", TASKS)
def test_heldout_tools_and_compositions_never_appear_in_training(name: str) -> None:
    task = make_task(name)
    tools, pairs = set(HELDOUT_TOOLS), set(HELDOUT_COMPOSITIONS)
    for seed in (0, 1):
        train = task.generate(np.arange(1500), seed, "train").inputs
        assert not any(tools & set(names_listed(x)) for x in train)
        assert not any(plan(x).composition in pairs for x in train)
        assert set(novelty(train)) == {"seen"}
    held = task.generate(np.arange(1500), 0, "heldout").inputs
    kinds = set(novelty(held))
    composes = name not in ("fpar", "fnext")  # their requests nest or chain nothing
    assert "new-tool" in kinds and ("new-composition" in kinds) == composes
    assert task.in_heldout(held).all()


def test_heldout_split_holds_every_novel_tool_and_composition() -> None:
    held = make_task("fcall").generate(np.arange(6000), 0, "heldout").inputs
    listed = {n for x in held for n in names_listed(x)}
    assert set(HELDOUT_TOOLS) <= listed
    assert set(HELDOUT_COMPOSITIONS) <= {plan(x).composition for x in held}


def test_generation_is_deterministic_and_seeded() -> None:
    task = make_task("fcall")
    a = task.generate(np.arange(200), 5, "train")
    assert a == task.generate(np.arange(200), 5, "train")
    assert a.inputs != task.generate(np.arange(200), 6, "train").inputs


@pytest.mark.parametrize("tools", [1, 2, 3, 4])
def test_catalogue_size_is_the_knob(tools: int) -> None:
    task = make_task("fcall", tools)
    ex = task.generate(np.arange(200), 0, "heldout")
    assert all(len(names_listed(x)) == tools for x in ex.inputs)
    assert max(map(len, ex.inputs)) <= task.max_input_len
    assert max(map(len, ex.answers)) <= task.max_answer_len


def test_bad_catalogue_size_names_the_range() -> None:
    with pytest.raises(RaremixError, match=r"tools.*from 1 to 4"):
        make_task("fcall", 5)
