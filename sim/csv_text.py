"""A table's rows as CSV bytes: the bytes of ``frame.to_csv(index=False, float_format="%.9g",
lineterminator="\\n")`` (UTF-8), built column by column in numpy, from a DataFrame or from a
pandas-free ``sim.table.Table`` of numpy columns (``sim.table.Ragged`` and ``Coded`` columns
included).

Every column becomes a byte matrix with one row per table row: each field's bytes in order,
with zero bytes wherever a field is shorter than the column's widest (integers right-aligned,
a minus sign in the first place, text left-aligned, the parts of a float each in a place of
their own). The matrices are put side by side with a column of ',' between them and a column
of '\\n' after the last, and the zero bytes are deleted in one pass (``bytearray.translate``,
a block of rows at a time, each block a piece to write): what is left is the CSV, with no
Python object per field or row. Text holding a zero byte is therefore left to pandas.

Integers are written digit by digit over the whole column, floats by ``float_slots`` (``%.9g``,
Python's correctly rounded digits, computed in numpy where they are certain and by Python's
formatting for the few values where they are not), booleans ``True``/``False``, NaN and None
as empty fields, text quoted the way the ``csv`` writer's ``QUOTE_MINIMAL`` does (a field
holding a comma or a double quote is put in double quotes, its quotes doubled), a ragged
column's values joined by ';', a coded column's names formatted once and picked row by row.
Anything else (a field holding a line break or a zero byte, a one-column table, a column type
not listed) is left to pandas: ``csv_pieces`` (``csv_bytes``) returns None for it and the
caller writes that frame with ``to_csv``.
"""

from __future__ import annotations

import functools
import itertools
from typing import Iterator

import numpy as np

from sim.table import Coded, Ragged, Table

_COMMA, _NEWLINE, _SEMICOLON = ord(","), ord("\n"), ord(";")
_ZERO = ord("0")


def _quoted(text: str) -> str:
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _text_fields(values: list) -> list[str] | None:
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
    if "\n" in joined or "\r" in joined or "\0" in joined:
        return None
    if "," in joined or '"' in joined:
        return [_quoted(v) for v in values]
    return values


def _byte_matrix(fields: list[str]) -> np.ndarray:
    """Strings as a (rows, widest) matrix of their UTF-8 bytes, zeros after each."""
    if not fields:
        return np.zeros((0, 0), np.uint8)
    if "".join(fields).isascii():  # a width given: numpy need not find it
        array = np.array(fields, dtype=f"S{max(1, max(map(len, fields)))}")
    else:
        array = np.array([f.encode("utf-8") for f in fields], dtype="S")
    return array.view(np.uint8).reshape(len(fields), array.dtype.itemsize)


def _text_slots(values: list) -> np.ndarray | None:
    fields = _text_fields(values)
    return None if fields is None else _byte_matrix(fields)


_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)


def integer_slots(values: np.ndarray) -> np.ndarray:
    """Integers as decimal text: a (rows, width) byte matrix, a '-' in the first place of a
    negative value, the digits right-aligned, zeros elsewhere. Written digit position by digit
    position over the whole array, in the narrowest unsigned type that holds the magnitudes;
    a column of values from 10 to 9,999 (most counts) is looked up in ``_digit_table``."""
    n = values.shape[0]
    negative = None
    if values.dtype.kind == "i" and n and int(values.min()) < 0:
        signed = values.astype(np.int64)
        magnitude = signed.astype(np.uint64)
        negative = signed < 0  # two's complement: exact for int64's minimum too
        magnitude[negative] = ~magnitude[negative] + np.uint64(1)
    else:
        magnitude = values
    top = int(magnitude.max()) if n else 0
    if negative is None and 10 <= top < 10**4:
        width = 2 if top < 100 else 4
        return _digit_table(width).take(magnitude).view(np.uint8).reshape(n, width)
    return _digit_slots(magnitude, negative, top)


def _digit_slots(magnitude: np.ndarray, negative: np.ndarray | None, top: int) -> np.ndarray:
    """``integer_slots`` of magnitudes at most ``top`` (and a '-' where ``negative``), digit
    position by digit position."""
    n = magnitude.shape[0]
    digits = len(str(top))
    rest = magnitude.astype(next(t for t in _UNSIGNED if top <= np.iinfo(t).max))
    sign = 0 if negative is None else 1
    out = np.zeros((n, sign + digits), np.uint8)
    if negative is not None:
        out[:, 0] = np.where(negative, ord("-"), 0)
    ten = rest.dtype.type(10)
    for d in range(digits):
        quotient = rest // ten if d < digits - 1 else None
        digit = (rest if quotient is None else rest - quotient * ten).astype(np.uint8)
        digit += np.uint8(_ZERO)
        if d:
            digit[rest == 0] = 0  # no leading zeros (the units digit is always written)
        out[:, sign + digits - 1 - d] = digit
        rest = quotient
    return out


@functools.cache
def _digit_table(width: int) -> np.ndarray:
    """``_digit_slots`` of every value below ``10**width`` (width 2 or 4), each row one
    unsigned integer: a column of such values is one ``take`` (below 1,000 the first of the
    4 places is a zero, deleted with the others)."""
    return _digit_slots(np.arange(10**width), None, 10**width - 1).view(f"u{width}")[:, 0]


# ---- floats: "%.9g" -----------------------------------------------------------------------
_POWERS = 10.0 ** np.arange(23)  # exact doubles
_MARGIN = 2.0 ** -20
"""How far from a half a scaled value's fraction must be for its rounding to be certain: a
double below 2**30 is within 2**-24 of the exact product it rounds."""
_UP = np.concatenate([np.ones(22), _POWERS])  # [shift + 22]: 10**shift for shift >= 0
_DOWN = _UP[::-1].copy()  # [shift + 22]: 10**-shift for shift < 0
_NINE = np.arange(9, dtype=np.int8)[:, None]  # the significant digits' rows


def _scaled(magnitude: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``magnitude * 10**(8 - exponent)`` rounded once: a product by an exact power of ten,
    or a quotient by one (``exponent`` within [-14, 30]; the other factor is 1)."""
    shift = 30 - exponent
    if int(exponent.max()) <= 8:  # every factor 10**k, k >= 0 (times: all below 1e9)
        return magnitude * _UP[shift]
    return magnitude * _UP[shift] / _DOWN[shift]


def float_slots(values: np.ndarray) -> np.ndarray:
    """Floats as Python's ``f"{v:.9g}"`` (NaN: an empty field): a byte matrix, zeros where a
    value has no byte. Its places, those that no value uses left out: a sign; the "0.", and
    up to three zeros of "0.000ddd"; nine digits with the decimal point among them; "e", the
    exponent's sign and two digits.

    Each finite nonzero value is scaled by an exact power of ten to [1e8, 1e9) in one rounded
    operation and rounded to nine digits; where the scaled value's fraction is within
    ``_MARGIN`` of a half (the rounding might go either way), or the power of ten would not be
    exact (magnitudes below 1e-14 or from 1e30 on), Python formats the value instead (the
    matrix then has every place: 20, room for any of Python's 16 characters)."""
    x = np.asarray(values, dtype=np.float64)  # read only: no copy of a float64 column
    n = x.shape[0]
    if not n:
        return np.zeros((0, 10), np.uint8)
    magnitude = np.abs(x)
    regular = np.isfinite(x) & (magnitude > 0)
    safe = np.where(regular, magnitude, 1.0)
    exponent = np.clip(np.floor(np.log10(safe)).astype(np.int32), -14, 30)
    scaled = _scaled(safe, exponent)
    off = np.flatnonzero((scaled >= 1e9) | (scaled < 1e8))  # log10 one off
    if off.size:
        exponent[off] = np.clip(exponent[off] + (scaled[off] >= 1e9) - (scaled[off] < 1e8),
                                -14, 30)
        scaled[off] = _scaled(safe[off], exponent[off])
    whole = np.floor(scaled)
    fraction = scaled - whole  # exact
    # (NaN, infinities and zeros are scaled from 1.0: exponent 0, never Python's, small or
    # scientific, so these masks need no ``regular &``)
    python = ((np.abs(fraction - 0.5) < _MARGIN) | (scaled < 1e8) | (scaled >= 1e9)
              | (safe < 1e-14) | (safe >= 1e30))
    number = np.where(python, 1e8, whole).astype(np.uint32) + (fraction > 0.5)
    carried = number >= 10**9
    number[carried] = 10**8
    exponent += carried
    digits = np.empty((9, n), np.uint8)  # digits[j]: the j-th significant digit
    rest = number
    for j in range(8, -1, -1):
        quotient = rest // np.uint32(10)
        digits[j] = rest - quotient * np.uint32(10)
        rest = quotient
    significant = np.full(n, 9, np.int8)
    trailing = np.ones(n, bool)
    for j in range(8, 0, -1):  # less one for each trailing zero
        trailing &= digits[j] == 0
        significant -= trailing
    fixed = (exponent >= -4) & (exponent < 9)
    large = fixed & (exponent >= 0)
    small = fixed & (exponent < 0)
    whole_digits = np.where(large, exponent + 1, 1).astype(np.int8)
    kept = np.where(regular, np.maximum(significant, whole_digits), 0)  # whole part's 0s stay
    digits += np.uint8(_ZERO)
    digits *= _NINE < kept  # the digits past the kept ones: none
    negative = np.signbit(x) & ~np.isnan(x)
    small_rows = np.flatnonzero(small)
    scientific_rows = np.flatnonzero(~fixed)
    python_rows = np.flatnonzero(python)
    every = python_rows.size > 0
    has_sign = every or bool(negative.any())
    has_lead = every or small_rows.size > 0
    has_e = every or scientific_rows.size > 0
    lead = int(has_sign)
    at = lead + 5 * has_lead  # the digits' first place
    out = np.zeros((n, at + 10 + 4 * has_e), np.uint8)
    if has_sign:
        out[negative, 0] = ord("-")
    # the digits, a '.' after the ``point``-th (none for 0.000ddd: its '.' is the lead's)
    point = np.where(small, 9, whole_digits - 1).astype(np.int8)
    dot = np.where(~small & (significant > whole_digits), np.uint8(ord(".")), np.uint8(0))
    out[:, at] = digits[0]
    for c in range(1, 10):
        after = np.where(point == c - 1, dot, digits[c - 1])
        out[:, at + c] = np.where(point >= c, digits[c] if c < 9 else 0, after)
    if has_lead:  # whole columns: often most rows are below 1
        zero = np.where(small, np.uint8(_ZERO), np.uint8(0))
        out[:, lead] = zero
        out[:, lead + 1] = np.where(small, np.uint8(ord(".")), np.uint8(0))
        for i in range(3):
            out[:, lead + 2 + i] = np.where(exponent < -1 - i, zero, 0)
    if scientific_rows.size:
        power = np.abs(exponent[scientific_rows])  # below 100: exponent within [-14, 30]
        e = at + 10
        out[scientific_rows, e] = ord("e")
        out[scientific_rows, e + 1] = np.where(exponent[scientific_rows] < 0, ord("-"),
                                               ord("+"))
        out[scientific_rows, e + 2] = power // 10 + _ZERO
        out[scientific_rows, e + 3] = power % 10 + _ZERO
    out[magnitude == 0, at] = _ZERO
    infinite = np.isinf(x)
    out[np.ix_(infinite, at + np.arange(3))] = np.frombuffer(b"inf", np.uint8)
    if python_rows.size:
        text = _byte_matrix([f"{v:.9g}" for v in x[python_rows].tolist()])
        out[python_rows] = 0
        out[python_rows, :text.shape[1]] = text
    return out


# ---- other columns ------------------------------------------------------------------------
_BOOLS = np.frombuffer(b"False" b"True\0", np.uint8).reshape(2, 5)


def ragged_slots(column: Ragged) -> np.ndarray:
    """A ``Ragged`` column's rows as their values joined by ';' (empty for none): a byte
    matrix with one place per value of the longest row, each as wide as the widest value and
    its ';' (none after a row's last), zeros elsewhere. The places are filled row by row
    through a mask of the places in use (one copy per place, of the place's width)."""
    sizes = np.maximum(np.asarray(column.counts), 0).astype(np.int32)
    rows = sizes.shape[0]
    longest = int(sizes.max()) if rows else 0
    if not longest:
        return np.zeros((rows, 0), np.uint8)
    values = integer_slots(np.asarray(column.values)[:int(sizes.sum(dtype=np.int64))])
    digits = values.shape[1]
    place = np.empty((values.shape[0], digits + 1), np.uint8)
    place[:, :digits] = values
    place[:, digits] = _SEMICOLON
    out = np.zeros((rows, longest), f"V{digits + 1}")  # a place: one item to copy
    out[np.arange(longest, dtype=sizes.dtype) < sizes[:, None]] = place.view(out.dtype)[:, 0]
    out = out.view(np.uint8)
    present = np.flatnonzero(sizes)
    out[present, (sizes[present] - 1) * (digits + 1) + digits] = 0  # the row's last ';'
    return out


def _column_slots(values) -> np.ndarray | None:
    """One column's byte matrix, or None when its type is left to pandas."""
    if isinstance(values, Ragged):
        return ragged_slots(values)
    if isinstance(values, Coded):
        names = _text_slots(list(values.names))
        return None if names is None else names[np.asarray(values.codes)]
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind == "f":
        return float_slots(values)
    if kind in "iu":
        return integer_slots(values)
    if kind == "b":
        return _BOOLS[values.astype(np.uint8)] if values.size else np.zeros((0, 5), np.uint8)
    if kind == "O":
        return _text_slots(values.tolist())
    return None


def _frame_slots(frame) -> list[np.ndarray] | None:
    """A DataFrame's columns as byte matrices (None when part of it is left to pandas)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, np.dtype):
            slots = _column_slots(column.to_numpy())
        elif getattr(column.dtype, "name", "") in ("str", "string"):  # pandas' text dtype
            slots = _text_slots(column.to_numpy(dtype=object).tolist())
        else:  # another pandas extension type
            return None
        if slots is None:
            return None
        columns.append(slots)
    return columns


BLOCK_BYTES = 1 << 20
"""About how many bytes of the side-by-side matrix are assembled at a time (a cache-sized
block of rows: the copy and the deletion of zeros run in cache; bounded memory)."""


def rows_pieces(columns: list[np.ndarray], separator: int = _COMMA) -> Iterator[bytearray]:
    """Byte matrices of one table's columns as its rows, a block of rows at a time: side by
    side, ``separator`` between them and a line break after each row, zero bytes deleted.
    Assembled in one reused buffer whose zeros are deleted in place of a copy of it."""
    n = columns[0].shape[0]
    width = sum(slots.shape[1] + 1 for slots in columns)
    block = max(1, min(n, BLOCK_BYTES // width))
    buffer = bytearray(block * width)
    matrix = np.frombuffer(buffer, np.uint8).reshape(block, width)
    at = 0
    for i, slots in enumerate(columns):
        at += slots.shape[1] + 1
        matrix[:, at - 1] = _NEWLINE if i == len(columns) - 1 else separator
    for start in range(0, n, block):
        rows = min(block, n - start)
        at = 0
        for slots in columns:
            matrix[:rows, at:at + slots.shape[1]] = slots[start:start + rows]
            at += slots.shape[1] + 1
        whole = buffer if rows == block else memoryview(buffer)[:rows * width].tobytes()
        yield whole.translate(None, b"\0")


def rows_bytes(columns: list[np.ndarray], separator: int = _COMMA) -> bytes:
    """``rows_pieces`` as one ``bytes``."""
    return b"".join(rows_pieces(columns, separator))


def csv_pieces(frame, header: bool) -> Iterator[bytes | bytearray] | None:
    """``frame``'s rows (and its header line when ``header``) as CSV bytes ending in a line
    break, in pieces to write one after another (a block of rows each); None when part of it
    must be written by pandas (see the module docstring), decided before any piece is made.

    ``frame``: a pandas DataFrame or a ``sim.table.Table`` (the same rows give the same bytes)."""
    names = list(frame.columns)
    if len(names) < 2 or any(not isinstance(name, str) for name in names):
        return None
    head = b""
    if header:
        fields = _text_fields(names)
        if fields is None:
            return None
        head = (",".join(fields) + "\n").encode("utf-8")
    if isinstance(frame, Table):
        columns = [_column_slots(values) for values in frame.columns.values()]
        if any(slots is None for slots in columns):
            return None
    else:
        columns = _frame_slots(frame)
        if columns is None:
            return None
    rows = rows_pieces(columns) if len(frame) else iter(())
    return itertools.chain((head,), rows)


def csv_bytes(frame, header: bool) -> bytes | None:
    """``csv_pieces`` as one ``bytes`` (None where pandas must write the frame)."""
    pieces = csv_pieces(frame, header)
    return None if pieces is None else b"".join(pieces)
