"""A tiny function-calling language: a tool catalogue, a request, the call(s) as the answer.

The input is `catalogue:request`. The catalogue lists `tools` tools (the knob, 1..4), each
a verb followed by the two-letter name of the tool that performs it: `akm,crt` offers tool
`km` for verb `a` and tool `rt` for verb `c`. Verbs are `a`..`h`, in four families of two siblings
((a, b), (c, d), …); a catalogue never offers two verbs of one family. The request is one
of five kinds (digit arguments):

| kind | request | answer |
|---|---|---|
| single | `a3` | `km(3)` |
| parallel | `a3+c5` | `km(3),rt(5)` in either order |
| nested | `a(c5)` | `km(rt(5))` |
| chain | `c5>a` | `rt(5)>km` (c first, then a on its result) |
| next-best | `b3` (no tool does b) | `km(3)`: the tool of b's sibling a |

The umbrella task `fcall` answers every kind; its seven sub-tasks, after the Granite
function-calling data sets, share its input format: `fnest`, `fchain`, `fpar`, `fnext`
(one kind each, the same answer), `fname` (the called tools' names), `fparam` (the argument
values) and `fresp` (the values the calls return; each verb is a fixed map on digits).

Held-out tools and compositions. Eight of the 64 tool names (`HELDOUT_TOOLS`) and eight
(outer, inner) verb pairs (`HELDOUT_COMPOSITIONS`) are *novel*. The shared hash split
(`raremix.tasks.split`) decides train vs held-out as for every task; on top of it the input
drawer never emits a novel input that the hash would send to training (it redraws it). So a
novel tool or composition appears only in held-out inputs, under any seed and in every task
of this module, while `in_heldout` stays the one rule every task uses.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from raremix import seeding
from raremix.tasks.core import BoolArray, Knob, SynthTask
from raremix.tasks.draws import Draws
from raremix.tasks.split import heldout_codes
from raremix.tasks.text import DIGITS, U8, concat

KINDS = ("single", "parallel", "nested", "chain", "nextbest")
"""Request kinds, in the order their index is drawn."""
VERBS = "abcdefgh"
NAME_LETTERS = "kmnprstw"
_V = np.frombuffer(VERBS.encode(), np.uint8)
_L = np.frombuffer(NAME_LETTERS.encode(), np.uint8)
_N = len(NAME_LETTERS) ** 2  # 64 two-letter tool names
_NAME_CODES = np.stack([np.repeat(_L, len(_L)), np.tile(_L, len(_L))], axis=1)  # (64, 2)
_NAME_SHIFT = 3
_NOVEL_NAME = (np.arange(_N) % 8 - np.arange(_N) // 8) % 8 == _NAME_SHIFT  # (64,)
_SEEN_NAMES = np.flatnonzero(~_NOVEL_NAME)  # (56,)
_PAIR_SHIFT = 3  # (outer, inner) is novel when inner = outer + 3 (mod 8): always cross-family
_NOVEL_PAIR = (np.arange(8)[None, :] - np.arange(8)[:, None]) % 8 == _PAIR_SHIFT  # (8, 8)
# every novel composition crosses families, so one catalogue can offer both of its verbs
assert all(o // 2 != i // 2 for o, i in zip(*np.nonzero(_NOVEL_PAIR), strict=True))
HELDOUT_TOOLS: tuple[str, ...] = tuple(
    bytes(_NAME_CODES[i]).decode() for i in np.flatnonzero(_NOVEL_NAME)
)
"""Tool names that appear only in held-out inputs."""
HELDOUT_COMPOSITIONS: tuple[tuple[str, str], ...] = tuple(
    (VERBS[o], VERBS[i]) for o, i in zip(*np.nonzero(_NOVEL_PAIR), strict=True)
)
"""(outer, inner) verb pairs that appear nested or chained only in held-out inputs."""
# Each verb is a fixed map on digits: what `fresp` computes.
_OPS = {"a": 1, "b": 2, "e": 5, "h": 9}  # x + k
_MAPS = {
    v: [(x + _OPS[v]) % 10 for x in range(10)]
    if v in _OPS
    else {
        "c": [2 * x % 10 for x in range(10)],
        "d": [3 * x % 10 for x in range(10)],
        "f": [9 - x for x in range(10)],
        "g": [x * x % 10 for x in range(10)],
    }[v]
    for v in VERBS
}
_ATTEMPTS = 8  # redraws of a novel input the hash would put in training (the last is seen-only)
_ATTEMPT_SALT = seeding.salt("task.attempt")


# drawing inputs ----------------------------------------------------------------------


def _raw(tools: int, kinds: tuple[int, ...], draws: Draws, seen_only: bool) -> tuple[U8, BoolArray]:
    """Candidate inputs (B, 4·tools + 5) and whether each holds a novel tool or composition."""
    b, k = len(draws), tools
    rows = np.arange(b)
    fam = draws.distinct(0, 4, k)  # (B, k) distinct verb families
    verb = 2 * fam + draws.ints(1, 2, k)  # (B, k)
    pool = _SEEN_NAMES if seen_only else np.arange(_N)
    names = pool[draws.distinct(2, len(pool), k)]  # (B, k) distinct names
    kind = np.asarray(kinds)[draws.ints(3, len(kinds))]  # (B,)
    s1 = draws.ints(4, k)  # (B,) the (outer) called slot
    s2 = np.where(kind == 1, draws.ints(5, k), (s1 + 1 + draws.ints(5, max(k - 1, 1))) % k)
    comp = (kind == 2) | (kind == 3)
    if k >= 2 and not seen_only:  # half the compositions try the novel partner of the outer
        partner = (verb[rows, s1] + _PAIR_SHIFT) % 8  # (B,)
        others = (np.arange(k)[None, :] != s1[:, None]) & (np.arange(k)[None, :] != s2[:, None])
        clash = ((fam == (partner // 2)[:, None]) & others).any(axis=1)  # (B,)
        boost = comp & ~clash & (draws.ints(6, 2) == 1)
        verb[rows[boost], s2[boost]] = partner[boost]
    v1, v2 = verb[rows, s1], verb[rows, s2]  # (B,), (B,)
    novel_pair = comp & _NOVEL_PAIR[v1, v2]
    if seen_only:  # swapping outer and inner always gives a pair that is not novel
        s1, s2 = np.where(novel_pair, s2, s1), np.where(novel_pair, s1, s2)
        v1, v2 = verb[rows, s1], verb[rows, s2]
        novel_pair[:] = False
    novel = _NOVEL_NAME[names].any(axis=1) | novel_pair  # (B,)
    args = (draws.ints(7, 10, 2) + ord("0")).astype(np.uint8)  # (B, 2)
    c1 = _V[np.where(kind == 4, v1 ^ 1, v1)]  # next-best asks for the absent sibling
    c2 = _V[v2]
    z = np.zeros(b, dtype=np.uint8)
    p, o, cl, g = (np.full(b, ord(ch), dtype=np.uint8) for ch in "+()>")
    by_kind = np.stack(
        [
            np.stack([c1, args[:, 0], z, z, z], axis=1),  # single
            np.stack([c1, args[:, 0], p, c2, args[:, 1]], axis=1),  # parallel
            np.stack([c1, o, c2, args[:, 0], cl], axis=1),  # nested
            np.stack([c2, args[:, 0], g, c1, z], axis=1),  # chain: inner first
            np.stack([c1, args[:, 0], z, z, z], axis=1),  # next-best
        ]
    )  # (5, B, 5)
    request = by_kind[kind, rows]  # (B, 5)
    length = np.array([2, 5, 5, 4, 2])[kind]  # (B,)
    entries = np.concatenate([_V[verb][:, :, None], _NAME_CODES[names]], axis=2)  # (B, k, 3)
    comma = np.full((b, k, 1), ord(","), dtype=np.uint8)
    catalogue = np.concatenate([entries, comma], axis=2).reshape(b, 4 * k)[:, :-1]  # (B, 4k-1)
    return concat(catalogue, b":", (request, length)), novel


def _inputs(tools: int, kinds: tuple[int, ...], draws: Draws) -> U8:
    """Inputs whose novel parts (if any) sit in the held-out split; see the module doc."""
    b = len(draws)
    out = np.zeros((b, 4 * tools + 5), dtype=np.uint8)
    todo = np.arange(b)
    for attempt in range(_ATTEMPTS):
        sub = Draws(draws.keys[todo])
        sub = sub if attempt == 0 else sub.fork(_ATTEMPT_SALT + attempt)
        codes, novel = _raw(tools, kinds, sub, seen_only=attempt == _ATTEMPTS - 1)
        ok = ~novel | heldout_codes(codes)  # (N,)
        out[todo[ok], : codes.shape[1]] = codes[ok]
        todo = todo[~ok]
        if not todo.size:
            break
    return out


# reading inputs ----------------------------------------------------------------------


class Plan(NamedTuple):
    """What a request asks for: its kind and the calls, as text and in parts."""

    kind: str
    call: str
    """The calls in canonical order (parallel: request order)."""
    other: str | None
    """Parallel calls in the other order, else None."""
    names: list[str]
    """Called tool names in the order they appear in `call`."""
    args: list[str]
    """Literal argument digits, in `call` order."""
    results: list[str]
    """The value each top-level call returns."""
    composition: tuple[str, str] | None
    """(outer, inner) verbs of a nested or chained request."""


def plan(text: str) -> Plan:
    """Parse one `catalogue:request` input and work out the calls that answer it."""
    catalogue, _, req = text.partition(":")
    tool = {e[0]: e[1:] for e in catalogue.split(",")}

    def name(verb: str) -> str:  # next-best: a verb with no tool falls back to its sibling
        return tool.get(verb) or tool[VERBS[VERBS.index(verb) ^ 1]]

    def run(verb: str, x: int) -> int:
        return _MAPS[verb if verb in tool else VERBS[VERBS.index(verb) ^ 1]][x]

    if "+" in req:
        va, xa, vb, xb = req[0], req[1], req[3], req[4]
        a, c = f"{name(va)}({xa})", f"{name(vb)}({xb})"
        res = [str(run(va, int(xa))), str(run(vb, int(xb)))]
        return Plan("parallel", f"{a},{c}", f"{c},{a}", [name(va), name(vb)], [xa, xb], res, None)
    if "(" in req:
        outer, inner, x = req[0], req[2], req[3]
        value = str(run(outer, run(inner, int(x))))
        call = f"{name(outer)}({name(inner)}({x}))"
        return Plan("nested", call, None, [name(outer), name(inner)], [x], [value], (outer, inner))
    if ">" in req:
        inner, x, outer = req[0], req[1], req[3]
        value = str(run(outer, run(inner, int(x))))
        call = f"{name(inner)}({x})>{name(outer)}"
        return Plan("chain", call, None, [name(inner), name(outer)], [x], [value], (outer, inner))
    verb, x = req[0], req[1]
    kind = "single" if verb in tool else "nextbest"
    return Plan(kind, f"{name(verb)}({x})", None, [name(verb)], [x], [str(run(verb, int(x)))], None)


def novelty(inputs: list[str]) -> list[str]:
    """Per input: 'new-composition' (a held-out verb pair nested or chained), 'new-tool' (it
    calls a held-out tool), 'seen' (nothing held out in it), or '' (a held-out tool is only
    listed, not called)."""
    novel_tools, novel_pairs = set(HELDOUT_TOOLS), set(HELDOUT_COMPOSITIONS)
    out = []
    for text in inputs:
        p = plan(text)
        listed = {e[1:] for e in text.partition(":")[0].split(",")}
        if p.composition in novel_pairs:
            out.append("new-composition")
        elif novel_tools & set(p.names):
            out.append("new-tool")
        else:
            out.append("" if novel_tools & listed else "seen")
    return out


# answers -----------------------------------------------------------------------------


def _calls(inputs: list[str], draws: Draws) -> list[str]:
    """The calls; parallel ones in a random order (so targets vary, as for open tasks)."""
    flip = draws.ints(0, 2).tolist() if len(draws) else []
    plans = [plan(s) for s in inputs]
    return [p.other if p.other and f else p.call for p, f in zip(plans, flip, strict=True)]


def _canonical_calls(inputs: list[str], _draws: Draws) -> list[str]:
    return [plan(s).call for s in inputs]


def _names(inputs: list[str], _draws: Draws) -> list[str]:
    return [",".join(plan(s).names) for s in inputs]


def _args(inputs: list[str], _draws: Draws) -> list[str]:
    return [",".join(plan(s).args) for s in inputs]


def _results(inputs: list[str], _draws: Draws) -> list[str]:
    return [",".join(plan(s).results) for s in inputs]


def _accept_calls(inputs: list[str], outputs: list[str]) -> BoolArray:
    """Right when the output is the calls, parallel ones in either order."""
    ok = []
    for x, o in zip(inputs, outputs, strict=True):
        p = plan(x)
        ok.append(isinstance(o, str) and (o == p.call or o == p.other))
    return np.array(ok, dtype=bool)


_ALPHABET = VERBS + NAME_LETTERS + DIGITS.decode() + ",:()+>"
# (task, kinds drawn, instruction, output space, longest answer, open?)
_SPECS: dict[str, tuple[tuple[int, ...], str, str, int, bool]] = {
    "fcall": (
        (0, 1, 2, 3, 4),
        "call the tools the request needs",
        "answer with tool calls",
        11,
        True,
    ),
    "fnest": (
        (2,),
        "nest one tool call inside another",
        "answer with a nested tool call",
        9,
        False,
    ),
    "fchain": (
        (3,),
        "chain the tool calls one after another",
        "answer with chained tool calls",
        8,
        False,
    ),
    "fpar": (
        (1,),
        "call the tools in parallel",
        "answer with tool calls separated by a comma",
        11,
        True,
    ),
    "fnext": ((4,), "call the closest available tool", "answer with one tool call", 5, False),
    "fname": (
        (0, 1, 2, 3, 4),
        "name the tools to call",
        "answer with tool names separated by a comma",
        5,
        False,
    ),
    "fparam": (
        (0, 1, 2, 3, 4),
        "give the argument values",
        "answer with digits separated by a comma",
        3,
        False,
    ),
    "fresp": (
        (0, 1, 2, 3, 4),
        "give the values the calls return",
        "answer with digits separated by a comma",
        3,
        False,
    ),
}
SUBTASKS = ("fnest", "fchain", "fpar", "fname", "fparam", "fnext", "fresp")
"""The umbrella's seven sub-tasks (Granite's granular function-calling data sets)."""
_SOLVE = {"fname": _names, "fparam": _args, "fresp": _results}


def _tool_task(name: str, tools: int) -> SynthTask:
    kinds, instruction, output_space, answer_len, is_open = _SPECS[name]
    knob = Knob("tools", 1, 4).checked(name, tools)
    return SynthTask(
        name=name,
        kind="open" if is_open else "structured",
        knob=knob,
        complexity=tools,
        instruction=instruction,
        output_space=output_space,
        alphabet=_ALPHABET,
        max_input_len=4 * tools + 5,
        max_answer_len=answer_len,
        draw_inputs=partial(_inputs, tools, kinds),
        solve=_SOLVE.get(name, _calls if is_open else _canonical_calls),
        accept=_accept_calls if is_open else None,
        subtasks=SUBTASKS if name == "fcall" else (),
    )


def fcall(tools: int = 2) -> SynthTask:
    """The umbrella: answer any request (single, parallel, nested, chain, next-best)."""
    return _tool_task("fcall", tools)


def fnest(tools: int = 2) -> SynthTask:
    """Nested requests only: one call inside another."""
    return _tool_task("fnest", tools)


def fchain(tools: int = 2) -> SynthTask:
    """Chained requests only: a call, then a second tool on its result."""
    return _tool_task("fchain", tools)


def fpar(tools: int = 2) -> SynthTask:
    """Parallel requests only: two independent calls, in either order (open)."""
    return _tool_task("fpar", tools)


def fnext(tools: int = 2) -> SynthTask:
    """Next-best function: the asked verb has no tool, call its sibling's."""
    return _tool_task("fnext", tools)


def fname(tools: int = 2) -> SynthTask:
    """Function-name detection: the names of the tools the request calls."""
    return _tool_task("fname", tools)


def fparam(tools: int = 2) -> SynthTask:
    """Parameter-value detection: the argument values of the calls."""
    return _tool_task("fparam", tools)


def fresp(tools: int = 2) -> SynthTask:
    """Response generation: the values the calls return (each verb maps a digit)."""
    return _tool_task("fresp", tools)
