"""Fast Arrow columns from NumPy: no Python object per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)


def repeated_string(value: str, n: int) -> pa.Array:
    return categorical(np.zeros(n, dtype=np.int32), [value])


def repeated_date(day: dt.date, n: int) -> pa.Array:
    return pa.array(np.full(n, (day - EPOCH).days, dtype=np.int32), pa.date32())


def categorical(codes: np.ndarray, labels: Sequence[str]) -> pa.Array:
    """Strings given as codes into `labels`, decoded in Arrow."""
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(list(labels))
    )
    return dictionary.cast(pa.string())
