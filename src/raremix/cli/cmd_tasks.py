"""`raremix tasks`: the task suite as a table, one sample example each."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from raremix.cli import app
from raremix.display import wide_console


@app.command()
def tasks() -> None:
    """List every registered task: kind, complexity knob, sub-tasks, a sample example, and
    its held-out size n and baselines (chance, majority answer, simplest rule)."""
    from raremix.tasks import EVAL_EXAMPLES, MIN_HELDOUT, task_table

    table = Table(
        title="raremix tasks (default complexity)",
        caption=f"n: distinct held-out examples an evaluation of {EVAL_EXAMPLES} scores (red: "
        f"under {MIN_HELDOUT}, the whole held-out space). Baselines are accuracies on that "
        "set: a random answer in the output space, the most common answer, the rule shown.",
        show_lines=False,
    )
    for col in ("task", "kind", "knob"):
        table.add_column(col, no_wrap=True, min_width=len(col))
    table.add_column("sub-tasks", overflow="fold")
    for col in ("instruction", "sample input", "answer"):
        table.add_column(col, overflow="fold")
    table.add_column("n", justify="right")
    for col in ("chance", "majority"):
        table.add_column(col, justify="right")
    table.add_column("heuristic (rule)", overflow="fold")
    for row in task_table():
        b = row["baselines"]
        n = str(row["n"]) if row["n"] >= MIN_HELDOUT else f"[red]{row['n']}[/]"
        rule = f"{b['heuristic']:.2f} ({escape(row['rule'])})" if "heuristic" in b else "-"
        table.add_row(
            row["name"],
            row["kind"],
            str(row["complexity"]),
            ", ".join(row["subtasks"]) or "-",
            row["instruction"],
            row["input"],
            row["answer"],
            n,
            f"{b['chance']:.2f}",
            f"{b['majority']:.2f}",
            rule,
        )
    # piped output defaults to 80 columns, which cuts task names: print it at full width
    wide_console(220).print(table)
