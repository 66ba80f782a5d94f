"""A table (or a slice of one) as named numpy columns: how run tables travel without pandas.

The run's tables (``sim.metrics.requests.RequestTable``, ``sim.metrics.recorder.IterationLog``)
hand their rows to the CSV writer (``sim.output.write_table`` -> ``sim.csv_text``) as
:class:`Table` slices, so that a command that only simulates and writes never imports pandas
(about a quarter of a second of every command's start). ``Table.to_frame`` gives the same
rows as a pandas DataFrame for code that wants one (pandas is imported then), and
:func:`is_dataframe` tells a DataFrame apart without importing pandas.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Table:
    """Columns in order, ``{name: 1-D array}``, all of one length: numbers as numeric arrays
    (NaN = empty), text as object arrays of ``str``."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).shape[0]) if self.columns else 0

    def to_frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (the columns' arrays, in order)."""
        import pandas as pd
        return pd.DataFrame(dict(self.columns))


def is_dataframe(value) -> bool:
    """Whether ``value`` is a pandas DataFrame (False at no cost where pandas was never
    imported: there can be none)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)
