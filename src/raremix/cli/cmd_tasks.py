"""`raremix tasks`: the task suite as a table, one sample example each."""

from __future__ import annotations

from rich.table import Table

from raremix.cli import app
from raremix.display import wide_console


@app.command()
def tasks() -> None:
    """List every registered task: kind, complexity knob, sub-tasks and a sample example."""
    from raremix.tasks import task_table

    table = Table(title="raremix tasks (default complexity)", show_lines=False)
    for col in ("task", "kind", "knob"):
        table.add_column(col, no_wrap=True, min_width=len(col))
    table.add_column("sub-tasks", overflow="fold")
    for col in ("instruction", "sample input", "answer"):
        table.add_column(col, overflow="fold")
    for row in task_table():
        table.add_row(
            row["name"], row["kind"], str(row["complexity"]), ", ".join(row["subtasks"]) or "-",
            row["instruction"], row["input"], row["answer"],
        )  # fmt: skip
    # piped output defaults to 80 columns, which cuts task names: print it at full width
    wide_console(180).print(table)
