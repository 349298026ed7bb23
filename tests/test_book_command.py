"""`spymaster book`: the reconstructed book of a bronze partition, as text and JSON."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import databento as db
import databento_dbn as dbn
import pytest

from foundation.lake import Lake
from ingest.landing import ingest
from spymaster.book_command import parse_moment
from spymaster.cli import main
from tests.conftest import SHARED_DATA
from tests.dbn_fixtures import day_start_ns, mbo, px, write_dbn
from tests.replay import replay

ESM4_FILE = "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Databento sample files not found at {SHARED_DATA}")
    lake = Lake(tmp_path_factory.mktemp("book") / "lake")
    ingest(SHARED_DATA, lake)
    return lake


def book_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["book", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_book_json_is_the_independent_replays_book(
    sample_lake: Lake, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = book_json(
        capsys,
        "--lake",
        str(sample_lake.root),
        "--symbol",
        "ESM4",
        "--dt",
        "2024-05-08",
        "--depth",
        "5",
    )
    assert set(payload) == {"symbol", "ts_recv", "valid", "orders", "bids", "asks"}
    records = db.DBNStore.from_file(shared_data / ESM4_FILE).to_ndarray()
    final = None
    for _, book in replay(records):
        final = book
    bids = sorted(((p, s) for p, s in final.depth["B"].items() if s > 0), reverse=True)[:5]
    asks = sorted((p, s) for p, s in final.depth["A"].items() if s > 0)[:5]
    assert [(round(p * 1e9), s) for p, s, _ in payload["bids"]] == bids
    assert [(round(p * 1e9), s) for p, s, _ in payload["asks"]] == asks
    assert payload["orders"] == len(final.orders)
    assert payload["valid"] is True
    assert payload["ts_recv"] == int(records["ts_recv"][-1])


def test_book_at_a_moment_applies_only_earlier_events(
    sample_lake: Lake, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = db.DBNStore.from_file(shared_data / ESM4_FILE).to_ndarray()
    moment = int(records["ts_recv"][13_650])
    payload = book_json(
        capsys,
        "--lake",
        str(sample_lake.root),
        "--symbol",
        "ESM4",
        "--dt",
        "2024-05-08",
        "--at",
        str(moment),
    )
    applied = records[records["ts_recv"].astype("int64") < moment]
    last_f_last = max(i for i in range(len(applied)) if applied["flags"][i] & 128)
    assert payload["ts_recv"] == int(applied["ts_recv"][last_f_last])


def test_moments_parse_as_iso_utc_or_nanoseconds() -> None:
    assert parse_moment("1715126401000000000") == 1715126401000000000
    assert parse_moment("2024-05-08T00:00:01Z") == 1715126401000000000
    assert parse_moment("2024-05-08T02:00:01+02:00") == 1715126401000000000
    assert parse_moment("2024-05-08 00:00:01.5") == 1715126401500000000


def test_missing_partition_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["book", "--lake", str(tmp_path), "--symbol", "ESZ9", "--dt", str(dt.date(2024, 1, 2))]
    )
    assert code == 1
    assert "no bronze futures_mbo partition for ESZ9 on 2024-01-02" in capsys.readouterr().err


def test_text_output_lists_both_sides(
    sample_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "book",
                "--lake",
                str(sample_lake.root),
                "--symbol",
                "ESM4",
                "--dt",
                "2024-05-08",
                "--depth",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ESM4 after ts_recv" in printed
    assert "5214.00" in printed
    assert "5214.25" in printed


def test_a_day_without_a_snapshot_is_refused(
    raw: Path, lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Live records only: the book is never known; `book` says so instead of printing an
    invalid book (the surfaces refuse the same day the same way)."""
    day = dt.date(2024, 5, 8)
    start = day_start_ns(day)
    records = [
        mbo(11, start + 1_000_000_000, "A", "B", px(5000.00), 2, 1),
        mbo(11, start + 2_000_000_000, "A", "A", px(5000.25), 3, 2),
    ]
    write_dbn(raw / "live-only.mbo.dbn.zst", dbn.Schema.MBO, records, {"ESM4": 11}, day)
    ingest(raw, lake, workers=1)
    code = main(["book", "--lake", str(lake.root), "--symbol", "ESM4", "--dt", "2024-05-08"])
    assert code == 1
    assert "futures_mbo symbol=ESM4 dt=2024-05-08: no snapshot" in capsys.readouterr().err
