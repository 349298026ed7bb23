"""The generator's DBN records (files are written by foundation.dbn_files)."""

from __future__ import annotations

import databento_dbn as dbn
import numpy as np

from foundation.dbn_facts import F_LAST, F_SNAPSHOT

FIRST_SEQUENCE = 1_000_001  # of a file's records

# The DBN version 3 MBO record (56 bytes), with action and side as raw bytes.
MBO_DTYPE = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("order_id", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "u1"),
        ("side", "u1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)
GLBX_PUBLISHER = 1


def mbo_records(
    records: np.ndarray, instrument_id: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Simulator records (already in file order) as DBN MBO structs with sequence numbers.
    As in Databento's parent-symbol files, F_LAST stands only on the last record of the whole
    start-of-file snapshot, not on each instrument's last."""
    out = np.zeros(len(records), dtype=MBO_DTYPE)
    out["length"] = MBO_DTYPE.itemsize // 4
    out["rtype"] = int(dbn.RType.MBO.value)
    out["publisher_id"] = GLBX_PUBLISHER
    out["instrument_id"] = instrument_id
    for field in ("ts_event", "order_id", "price", "size", "flags", "action", "side", "ts_recv"):
        out[field] = records[field]
    snapshot = np.flatnonzero(out["flags"] & F_SNAPSHOT)
    if len(snapshot):
        out["flags"][snapshot] &= ~np.uint8(F_LAST)
        out["flags"][snapshot[-1]] |= np.uint8(F_LAST)
    out["ts_in_delta"] = rng.integers(12_000, 19_000, len(records))
    out["sequence"] = np.arange(len(records)) + FIRST_SEQUENCE
    return out
