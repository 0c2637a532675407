"""Tables the commands print: the bench's ``ResultTable``, drawn to fit 80 columns.

Like ``starmesh bench``'s tables (``starmesh.bench.tables``), a cell too wide wraps
("fold") instead of being cut with an ellipsis. Padding is collapsed between columns (one
space and the rule) so that seven or eight short columns of figures fit 80 columns; what
cannot be short (a source's detail, a path's last error) goes in a table of its own below.
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from starmesh.bench.tables import ResultTable

__all__ = ["ResultTable", "to_terminal"]


def to_terminal(table: ResultTable, *, left: int = 2) -> Table:
    """``table`` for the terminal: its first ``left`` columns left-aligned, figures right."""
    drawn = Table(
        title=table.title or None, box=box.SIMPLE_HEAD, caption=table.note or None,
        collapse_padding=True, pad_edge=False,
    )  # fmt: skip
    for index, column in enumerate(table.columns):
        drawn.add_column(column, justify="left" if index < left else "right", overflow="fold")
    for row in table.rows:
        drawn.add_row(*row)
    return drawn
