"""Per-task statistics of tagged data, and which tasks a natural mix would starve.

The natural mix draws each task in proportion to its rows. Over a training budget of
B examples (steps × batch; default one pass over the data) task i is seen about
share_i × B times. A task is flagged as *starved* when either

* it would be seen fewer than `min_examples` times (default 100): too few examples
  to learn an output format from, whatever the model's size; or
* its share is below `min_share` (default 1%): between two of its examples the model
  takes ~1/share examples of other tasks, whose gradients overwrite what the rare
  task built up — the interference that Huang et al. (2026) find small models lose
  rare tasks to. raremix's own lab shows it at 3%: a 25k model reaches 0.56 on such
  a task under the natural mix and 0.89 when it is up-weighted to 30%.

Both thresholds are knobs, not laws; the warning names which one fired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

MIN_EXAMPLES = 100
MIN_SHARE = 0.01


def token_lengths(texts: Sequence[str], tokenizer: Any, chunk: int = 2048) -> np.ndarray:
    """Tokens per text under a Hugging Face tokenizer (no special tokens added)."""
    out = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        ids = tokenizer(list(texts[start : start + chunk]), add_special_tokens=False)["input_ids"]
        out[start : start + len(ids)] = [len(x) for x in ids]
    return out


def task_stats(
    table: pa.Table,
    *,
    budget: int | None = None,
    batch_size: int | None = None,
    tokenizer: Any = None,
    min_examples: float = MIN_EXAMPLES,
    min_share: float = MIN_SHARE,
) -> pd.DataFrame:
    """One row per task, most common first.

    Columns: task, count, share, rarity (1 = rarest), median prompt and response
    length in characters (and in tokens with `tokenizer`), `natural examples`
    (share × budget; budget defaults to the number of rows), `per batch`
    (share × batch_size, when given) and `starved` (why, or empty).
    """
    import pandas as pd

    columns: dict[str, Any] = {
        "task": table.column("task").to_numpy(zero_copy_only=False),
        "prompt chars": pc.utf8_length(table.column("prompt")).to_numpy(),
        "response chars": pc.utf8_length(table.column("response")).to_numpy(),
    }
    if tokenizer is not None:
        columns["prompt tokens"] = token_lengths(table.column("prompt").to_pylist(), tokenizer)
        columns["response tokens"] = token_lengths(table.column("response").to_pylist(), tokenizer)
    rows = pd.DataFrame(columns)
    lengths = rows.groupby("task").median()
    frame = rows.groupby("task").size().rename("count").to_frame().join(lengths).reset_index()
    frame = frame.sort_values(["count", "task"], ascending=[False, True], ignore_index=True)
    total = int(frame["count"].sum())
    frame.insert(2, "share", frame["count"] / total)
    frame.insert(3, "rarity", np.arange(len(frame), 0, -1))
    examples = frame["share"] * (budget if budget is not None else total)
    frame["natural examples"] = examples
    if batch_size is not None:
        frame["per batch"] = frame["share"] * batch_size
    frame["starved"] = [
        starved_reason(float(n), float(s), min_examples, min_share)
        for n, s in zip(examples, frame["share"], strict=True)
    ]
    return frame


def starved_reason(examples: float, share: float, min_examples: float, min_share: float) -> str:
    """Why a task at `share` seen `examples` times would be starved ('' if it would not)."""
    reasons = []
    if examples < min_examples:
        reasons.append(f"~{examples:,.0f} examples < {min_examples:,.0f}")
    if share < min_share:
        reasons.append(f"{share:.2%} of the mix < {min_share:.0%}")
    return "; ".join(reasons)


def starvation_lines(frame: pd.DataFrame, *, run: str) -> list[str]:
    """One warning per starved task, then one line of advice; empty if none is starved.

    `run` describes the budget in words, e.g. '2,000 steps × batch 32'.
    """
    starved = frame[frame["starved"] != ""].sort_values("count")
    if starved.empty:
        return []
    lines = []
    for row in starved.to_dict("records"):
        share, seen = float(row["share"]), float(row["natural examples"])
        lines.append(
            f"'{row['task']}' would be starved by the natural mix: {share:.2%} of the data "
            f"(one example in {1 / share:,.0f}), ~{seen:,.0f} examples over {run} ({row['starved']})"
        )
    names = ", ".join(str(t) for t in starved["task"])
    lines.append(
        f"protect them with a designed mix, e.g. strategy: upweight, params: {{tasks: [{names}], "
        "floor: 0.02}, or strategy: temperature, params: {tau: 3}; check it with "
        "`raremix mix plan CONFIG --data DATA`"
    )
    return lines
