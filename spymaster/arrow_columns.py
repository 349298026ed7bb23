"""Fast Arrow columns from NumPy: no Python object per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)

STRING_CODES = pa.dictionary(pa.int32(), pa.string())
"""The engine's string columns: codes into their few distinct values. Built without a string
per row, and Parquet writes its dictionary pages straight from the codes (a busy day's
options quotes: 330 -> 200 ns a row); SQL reads them as VARCHAR."""


def repeated_string(value: str, n: int) -> pa.DictionaryArray:
    return categorical(np.zeros(n, dtype=np.int32), [value])


def repeated_date(day: dt.date, n: int) -> pa.Array:
    return pa.array(np.full(n, (day - EPOCH).days, dtype=np.int32), pa.date32())


def categorical(codes: np.ndarray, labels: Sequence[str] | pa.StringArray) -> pa.DictionaryArray:
    """Strings given as codes into `labels` (STRING_CODES; an Arrow array of labels made
    once when they are many and used again)."""
    if not isinstance(labels, pa.StringArray):
        labels = pa.array(list(labels), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), labels)
