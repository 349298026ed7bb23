"""The future's records a live session holds until their second can close (a quarter second
at most): gathered from several batches, they reach the engine and bronze as if each batch
had been converted on its own (the same bronze rows, with each record's position in its
file)."""

from __future__ import annotations

from pathlib import Path

import databento as db
import numpy as np
import pyarrow as pa

from ingest.bronze_tables import SourceSchema, to_record_batch
from live.session import SECOND_NS, HeldRecords

BATCHES = ((30_000, 30_700), (30_700, 31_500), (31_500, 34_000))  # file positions


def test_held_records_convert_as_their_batches_do(shared_data: Path) -> None:
    chunk = db.DBNStore.from_file(shared_data / "esh4-glbx-mdp3-20231225.mbo.dbn.zst").to_ndarray()
    # some records of each batch (live holds its contract's; the sample has one instrument)
    wanted = chunk["side"] == b"B"
    held = HeldRecords()
    expected = []
    for offset, stop in BATCHES:
        batch, rows = chunk[offset:stop], wanted[offset:stop]
        assert 0 < rows.sum() < len(rows)
        held.add(batch[rows], offset + np.flatnonzero(rows), "a.dbn")
        expected.append(to_record_batch(SourceSchema.MBO, batch, offset).filter(pa.array(rows)))
    start, stop = BATCHES[0][0], BATCHES[-1][1]
    positions = start + np.flatnonzero(wanted[start:stop])
    records, gathered, source = held.take()
    assert source == "a.dbn"
    assert not held.parts
    assert np.array_equal(records, chunk[positions])
    converted = to_record_batch(SourceSchema.MBO, gathered)
    assert converted.equals(pa.Table.from_batches(expected).combine_chunks().to_batches()[0])
    assert np.array_equal(converted.column("record_index").to_numpy(), positions)


def test_held_records_go_at_their_seconds_end_or_a_quarter_second_after_the_first(
    shared_data: Path,
) -> None:
    record = db.DBNStore.from_file(
        shared_data / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    ).to_ndarray()[:1]
    second = int(record["ts_recv"][0]) // SECOND_NS * SECOND_NS
    for after_ms, due_ms in ((100, 350), (900, 1000), (750, 1000), (0, 250)):
        held = HeldRecords()
        early = record.copy()
        early["ts_recv"] = second + after_ms * 1_000_000
        held.add(early, np.zeros(1, np.int64), "a.dbn")
        later = early.copy()
        later["ts_recv"] += 1  # a later record does not move it
        held.add(later, np.ones(1, np.int64), "a.dbn")
        assert held.due_ns == second + due_ms * 1_000_000
