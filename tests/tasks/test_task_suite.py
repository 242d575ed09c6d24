"""Every registered task: answers verify, corruptions do not, splits never mix, and
generation is a pure function of (seed, index, split)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.tasks import SPLITS, TASKS, SynthTask, make_task, task_table

NAMES = sorted(TASKS)
OPEN = [n for n in NAMES if make_task(n).kind == "open"]


def _min_task(name: str) -> SynthTask:
    knob = make_task(name).knob
    return make_task(name, knob.lo if not knob.odd or knob.lo % 2 else knob.lo + 1)


def _invalid_variants(task: SynthTask, x: str, y: str) -> list[object]:
    """Outputs that are wrong for input x whose reference answer is y, whatever the task."""
    bad: list[object] = ["", "#", y + "#", y + y[-1] * (task.max_answer_len + 1), None, 7]
    if task.kind == "structured" or task.name in ("permute", "pairsum"):
        # One character changed: a different answer (structured), a different multiset
        # (permute) or a different sum or a leading zero (pairsum).
        for i, c in enumerate(y):
            if c == " ":
                continue
            other = next(a for a in task.alphabet if a != c and a != " ")
            bad.append(y[:i] + other + y[i + 1 :])
        bad.append(y[:-1])
    if task.name == "bigger":
        bad += [x, "0" + x[1:], str(int(x) - 1)]
    if task.name == "between":
        bad += x.split(",")
    if task.name == "pairsum":
        bad += [x, f"{x} 1", f"0{x} 0"]
    return bad


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", SPLITS)
def test_generated_answers_verify_and_fit_the_declared_format(name: str, split: str) -> None:
    task = make_task(name)
    ex = task.generate(np.arange(400), seed=3, split=split)  # type: ignore[arg-type]
    assert len(ex) == 400
    assert task.verify(ex.inputs, ex.answers).all()
    assert task.verify(ex.inputs, task.reference(ex.inputs)).all()
    for x, y in zip(ex.inputs, ex.answers, strict=True):
        assert 0 < len(x) <= task.max_input_len and 0 < len(y) <= task.max_answer_len
        assert set(x) <= set(task.alphabet) and set(y) <= set(task.alphabet)


@pytest.mark.parametrize("name", NAMES)
def test_corrupted_answers_fail(name: str) -> None:
    task = make_task(name)
    ex = task.generate(np.arange(60), seed=5, split="train")
    for x, y in zip(ex.inputs, ex.answers, strict=True):
        bad = _invalid_variants(task, x, y)
        ok = task.verify([x] * len(bad), bad)  # type: ignore[list-item]
        assert not ok.any(), (x, y, [b for b, v in zip(bad, ok, strict=True) if v])


@pytest.mark.parametrize("name", NAMES)
def test_train_and_heldout_inputs_are_disjoint(name: str) -> None:
    task = make_task(name)
    train = task.generate(np.arange(2000), seed=11, split="train").inputs
    held = task.generate(np.arange(2000), seed=12, split="heldout").inputs
    assert not task.in_heldout(train).any()
    assert task.in_heldout(held).all()
    assert not set(train) & set(held)


@pytest.mark.parametrize("name", NAMES)
def test_smallest_complexity_still_has_both_splits(name: str) -> None:
    task = _min_task(name)
    for split in SPLITS:
        ex = task.generate(np.arange(300), seed=0, split=split)  # type: ignore[arg-type]
        assert task.verify(ex.inputs, ex.answers).all()
        assert len(set(ex.inputs)) > 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", SPLITS)
def test_example_i_does_not_depend_on_its_batch(name: str, split: str) -> None:
    task = make_task(name)
    whole = task.generate(np.arange(64), seed=7, split=split)  # type: ignore[arg-type]
    some = task.generate(np.array([40, 3, 63, 3]), seed=7, split=split)  # type: ignore[arg-type]
    assert some.inputs == [whole.inputs[i] for i in (40, 3, 63, 3)]
    assert some.answers == [whole.answers[i] for i in (40, 3, 63, 3)]


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_tasks_give_different_streams(name: str) -> None:
    task = make_task(name)
    a = task.generate(np.arange(50), seed=0, split="train").inputs
    b = task.generate(np.arange(50), seed=1, split="train").inputs
    assert a != b
    assert task.generate(np.arange(50), seed=0, split="train").inputs == a


@pytest.mark.parametrize("name", NAMES)
def test_tasks_pickle_for_dataloader_workers(name: str) -> None:
    task = make_task(name)
    clone = pickle.loads(pickle.dumps(task))
    idx = np.arange(20)
    assert clone.generate(idx, np.int64(4), "train") == task.generate(idx, 4, "train")


def test_tasks_sharing_an_input_format_draw_different_inputs() -> None:
    copy = make_task("copy").generate(np.arange(20), 0, "train").inputs
    sort = make_task("sort").generate(np.arange(20), 0, "train").inputs
    assert copy != sort


@pytest.mark.parametrize("name", OPEN)
def test_open_reference_answers_vary_for_the_same_input(name: str) -> None:
    task = _min_task(name)
    ex = task.generate(np.arange(3000), seed=0, split="train")
    answers: dict[str, set[str]] = {}
    for x, y in zip(ex.inputs, ex.answers, strict=True):
        answers.setdefault(x, set()).add(y)
    assert max(len(v) for v in answers.values()) >= 2


def test_composite_answers_are_their_steps_applied_in_order() -> None:
    for name in NAMES:
        for sub in make_task(name).subtasks:
            assert sub in TASKS, f"{name}: sub-task {sub} is not registered"
    chain = make_task("chain", 6)
    ex = chain.generate(np.arange(200), seed=1, split="heldout")
    answers = ex.inputs
    for sub in chain.subtasks:
        answers = make_task(sub, 6).reference(answers)
    assert answers == ex.answers

    state, step = make_task("state", 5), make_task("step")
    ex = state.generate(np.arange(200), seed=1, split="train")
    for x, y in zip(ex.inputs, ex.answers, strict=True):
        reg = x[0]
        for j in range(1, len(x), 2):
            reg = step.reference([reg + x[j : j + 2]])[0]
        assert reg == y


def test_task_table_lists_every_task_with_a_valid_sample() -> None:
    rows = task_table()
    assert [r["name"] for r in rows] == list(TASKS)
    for r in rows:
        task = make_task(r["name"])
        assert r["complexity"] == task.complexity and r["kind"] == task.kind
        assert task.verify([r["input"]], [r["answer"]]).all()
        assert 0 < r["n"] <= 256 and set(r["baselines"]) >= {"chance", "majority"}
        assert bool(r["rule"]) == ("heuristic" in r["baselines"])


def test_unknown_task_suggests_the_closest_name() -> None:
    with pytest.raises(RaremixError, match="unknown task 'revrse': did you mean 'reverse'"):
        make_task("revrse")


@pytest.mark.parametrize(
    ("name", "value", "range_text"),
    [
        ("copy", 0, "from 2 to 16"),
        ("modadd", 101, "from 7 to 100"),
        ("modadd", 3, "from 7 to 100"),
        ("majority", 8, "an odd integer from 7 to 19"),
        ("parity", 11, "from 1 to 10"),
        ("step", 2, "from 1 to 1"),
        ("add", True, "from 1 to 6"),
        ("state", "3", "from 1 to 9"),
    ],
)
def test_bad_complexity_names_the_valid_range(name: str, value: object, range_text: str) -> None:
    with pytest.raises(RaremixError, match=range_text) as err:
        make_task(name, value)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_generate_rejects_bad_split_and_indices() -> None:
    task = make_task("copy")
    with pytest.raises(RaremixError, match="did you mean 'heldout'"):
        task.generate(np.arange(3), 0, "held_out")  # type: ignore[arg-type]
    with pytest.raises(RaremixError, match="non-negative"):
        task.generate(np.array([1, -1]), 0, "train")
    with pytest.raises(RaremixError, match="non-negative"):
        task.generate(np.array([0.5]), 0, "train")
    assert len(task.generate(np.arange(0), 0, "train")) == 0


def test_verify_needs_one_output_per_input() -> None:
    with pytest.raises(RaremixError, match="one output per input"):
        make_task("copy").verify(["ab", "cd"], ["ab"])
