"""A table's rows as CSV text: the bytes of ``frame.to_csv(index=False, float_format="%.9g",
lineterminator="\\n")``, built column by column, from a DataFrame or from a pandas-free
``sim.table.Table`` of numpy columns.

pandas formats a frame cell by cell through Python's ``csv`` writer; here each column becomes
one list of strings (integers and booleans with ``str``, floats ``%.9g`` with NaN as an empty
field, text as is) and the rows are joined once, about three times faster on the simulator's
tables. Text is quoted the way the ``csv`` writer's ``QUOTE_MINIMAL`` does it (a field holding
a comma or a double quote is put in double quotes, its quotes doubled). Anything else (a field
holding a line break, a one-column table, a column type not listed) is left to pandas:
``csv_text`` returns None for it and the caller writes that frame with ``to_csv``.
"""

from __future__ import annotations

import numpy as np

from sim.table import Table


def _quoted(text: str) -> str:
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _text_column(values: list) -> list[str] | None:
    """An object column's fields ("" for None and NaN), or None when pandas must write it."""
    try:
        joined = "".join(values)  # the common case, only text: checked in one pass
    except TypeError:
        fields = []
        for v in values:
            if isinstance(v, str):
                fields.append(v)
            elif v is None or (isinstance(v, float) and v != v):
                fields.append("")
            else:  # another object (pandas' NA, a number in a text column): pandas writes it
                return None
        values, joined = fields, "".join(fields)
    if "\n" in joined or "\r" in joined:
        return None
    if "," in joined or '"' in joined:
        return [_quoted(v) for v in values]
    return values


def decimal_buffer(values: np.ndarray, separator: str) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Integers ``values`` as decimal text in one byte buffer, each followed by
    ``separator``: (buffer, each value's start, each value's end before its separator).
    Written digit position by digit position over the whole array (no per-value Python)."""
    values = values.astype(np.int64)
    negative = values < 0
    magnitude = np.abs(values)  # int64's minimum stays negative: left to the caller's check
    digits = np.ones(values.shape[0], dtype=np.int64)
    power, top = 10, int(magnitude.max()) if values.size else 0
    while power <= top:
        digits += magnitude >= power
        power *= 10
    ends = np.cumsum(digits + negative + 1) - 1
    starts = ends - digits - negative
    buf = np.full(int(ends[-1]) + 1 if values.size else 0, ord(separator), dtype=np.uint8)
    buf[starts[negative]] = ord("-")
    rest = magnitude.copy()
    for d in range(int(digits.max()) if values.size else 0):
        has = digits > d
        buf[(ends - 1 - d)[has]] = (rest[has] % 10 + ord("0")).astype(np.uint8)
        rest //= 10
    return buf, starts, ends


def _integer_fields(values: np.ndarray) -> list[str]:
    if not values.size:
        return []
    if values.dtype.kind == "u" and values.dtype.itemsize == 8 or (
            values.dtype.kind == "i" and int(values.min()) == np.iinfo(np.int64).min):
        return list(map(str, values.tolist()))  # beyond int64's magnitudes
    buf, _, _ = decimal_buffer(values, "\n")
    return buf[:-1].tobytes().decode("ascii").split("\n")


def _column_fields(values: np.ndarray) -> list[str] | None:
    """One column's fields as text, or None when its type is left to pandas."""
    kind = values.dtype.kind
    if kind == "f":
        return ["" if v != v else f"{v:.9g}" for v in values.tolist()]
    if kind in "iu":
        return _integer_fields(values)
    if kind == "b":
        return list(map(str, values.tolist()))
    if kind == "O":
        return _text_column(values.tolist())
    return None


def _frame_columns(frame) -> list[list[str]] | None:
    """A DataFrame's columns as fields (None when part of it is left to pandas)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, np.dtype):
            fields = _column_fields(column.to_numpy())
        elif getattr(column.dtype, "name", "") in ("str", "string"):  # pandas' text dtype
            fields = _text_column(column.to_numpy(dtype=object).tolist())
        else:  # another pandas extension type
            return None
        if fields is None:
            return None
        columns.append(fields)
    return columns


def csv_text(frame, header: bool) -> str | None:
    """``frame``'s rows (and its header line when ``header``) as CSV text ending in a line
    break; None when part of it must be written by pandas (see the module docstring).

    ``frame``: a pandas DataFrame or a ``sim.table.Table`` (the same rows give the same text)."""
    names = list(frame.columns)
    if len(names) < 2 or any(not isinstance(name, str) for name in names):
        return None
    if isinstance(frame, Table):
        columns = [_column_fields(np.asarray(values)) for values in frame.columns.values()]
        if any(fields is None for fields in columns):
            return None
    else:
        columns = _frame_columns(frame)
        if columns is None:
            return None
    lines = []
    if header:
        header_fields = _text_column(names)
        if header_fields is None:
            return None
        lines.append(",".join(header_fields))
    lines.extend(map(",".join, zip(*columns)))
    return "\n".join(lines) + "\n" if lines else ""
