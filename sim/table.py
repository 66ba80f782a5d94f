"""A table (or a slice of one) as named numpy columns: how run tables travel without pandas.

The run's tables (``sim.metrics.requests.RequestTable``, ``sim.metrics.recorder.IterationLog``)
hand their rows to the CSV writer (``sim.output.write_table`` -> ``sim.csv_text``) as
:class:`Table` slices (a column of integer lists, such as the iteration log's per-step
counts, as a :class:`Ragged` column: flat values and counts, turned into text only by the
writer; a text column of a few distinct values, such as ``kind`` or ``status``, as a
:class:`Coded` column: small codes and the strings they stand for), so that a command that
only simulates and writes never imports pandas (about a quarter of a second of every
command's start). ``Table.to_frame`` gives the same
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
class Ragged:
    """A column whose cells are lists of integers, written as the values joined by ';':
    every row's values back to back (``values``) and each row's count (``counts``; -1 means
    none and is written as an empty field, like a row with no values)."""

    values: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def text(self) -> np.ndarray:
        """Each row's values joined by ';' ("" for none), as an object array of ``str`` (the
        bytes the CSV writer gives each cell)."""
        from sim.csv_text import ragged_slots, rows_bytes
        out = np.empty(len(self), dtype=object)
        if len(self):
            slots = ragged_slots(self)
            lines = rows_bytes([slots], separator=ord("\n")).decode("ascii")
            out[:] = lines.split("\n")[:-1]
        return out


@dataclass(frozen=True)
class Coded:
    """A text column of a few distinct strings: each row's code (``codes``, integers) into
    ``names`` (the strings, an object array of ``str``). The writer formats each name once."""

    codes: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def text(self) -> np.ndarray:
        """Each row's string, as an object array of ``str``."""
        return np.asarray(self.names, dtype=object)[self.codes]


@dataclass(frozen=True)
class Table:
    """Columns in order, ``{name: 1-D array, Ragged or Coded}``, all of one length: numbers
    as numeric arrays (NaN = empty), text as object arrays of ``str`` or :class:`Coded`, lists
    of integers as :class:`Ragged`."""

    columns: dict[str, np.ndarray | Ragged | Coded]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def to_frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (the columns' arrays, in order; a ``Ragged`` or
        ``Coded`` column as its text, pandas' ``object`` type)."""
        import pandas as pd
        return pd.DataFrame({name: values.text() if isinstance(values, (Ragged, Coded))
                             else values for name, values in self.columns.items()})


def is_dataframe(value) -> bool:
    """Whether ``value`` is a pandas DataFrame (False at no cost where pandas was never
    imported: there can be none)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)
