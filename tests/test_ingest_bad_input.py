"""Bad raw input: each is a clear error naming the file, and landed data stays as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from foundation.lake import Lake
from ingest.errors import IngestError
from ingest.landing import ingest
from ingest.partitions import ingest_lock
from ingest.source_files import check_whole, file_sha256
from spymaster.cli import main
from tests.dbn_fixtures import book_day, day_start_ns, encode, mbo, metadata, px, write_dbn

DAY1 = dt.date(2024, 5, 8)
DAY2 = dt.date(2024, 5, 9)
ESM4 = 11


def bronze_state(lake: Lake) -> dict[str, str]:
    return {
        str(path.relative_to(lake.bronze)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake.bronze.rglob("*"))
        if path.is_file() and path.name != "lock"
    }


@pytest.fixture
def landed(raw: Path, lake: Lake) -> dict[str, str]:
    """A lake holding one good day, and its state before the bad file arrives."""
    write_dbn(
        raw / "good.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    ingest(raw, lake)
    return bronze_state(lake)


def mbo_bytes(day: dt.date = DAY2) -> bytes:
    return encode(
        metadata(dbn.Schema.MBO, day, day + dt.timedelta(days=1), {"ESM4": ESM4}),
        book_day(ESM4, day, 5000.0),
    )


def truncated_zstd(path: Path) -> None:
    compressed = zstandard.ZstdCompressor().compress(mbo_bytes())
    path.write_bytes(compressed[: len(compressed) - 40])


def corrupt_zstd_block(path: Path) -> None:
    """A compressed block's bytes changed in the middle of the file (its headers intact)."""
    compressed = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(mbo_bytes()))
    middle = len(compressed) // 2
    compressed[middle : middle + 8] = bytes(b ^ 0x5A for b in compressed[middle : middle + 8])
    path.write_bytes(bytes(compressed))


def truncated_plain_dbn(path: Path) -> None:
    path.write_bytes(mbo_bytes()[:-20])


def corrupt_header(path: Path) -> None:
    data = bytearray(mbo_bytes())
    data[8:24] = b"\xff" * 16  # the dataset name
    path.write_bytes(bytes(data))


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def not_dbn(path: Path) -> None:
    path.write_bytes(b"ts_recv,price\n1,2\n")


def unsupported_schema(path: Path) -> None:
    bar = dbn.OHLCVMsg(
        rtype=dbn.RType.OHLCV_1M,
        publisher_id=1,
        instrument_id=ESM4,
        ts_event=day_start_ns(DAY2),
        open=px(5000),
        high=px(5001),
        low=px(4999),
        close=px(5000.5),
        volume=10,
    )
    write_dbn(path, dbn.Schema.OHLCV_1M, [bar], {"ESM4": ESM4}, DAY2)


def wrong_dataset(path: Path) -> None:
    write_dbn(
        path,
        dbn.Schema.MBO,
        book_day(ESM4, DAY2, 5000.0),
        {"ESM4": ESM4},
        DAY2,
        dataset="XNAS.ITCH",
    )


def record_outside_the_file_period(path: Path) -> None:
    records = book_day(ESM4, DAY2, 5000.0)
    records.append(mbo(ESM4, day_start_ns(DAY2) + 2 * 86_400 * 10**9, "A", "B", px(5000), 1, 99))
    write_dbn(path, dbn.Schema.MBO, records, {"ESM4": ESM4}, DAY2)


def option_without_definition(path: Path) -> None:
    write_dbn(
        path,
        dbn.Schema.MBO,
        [mbo(901, day_start_ns(DAY2) + 5, "A", "B", px(10), 1, 1)],
        {"ESM4 C5000": 901},
        DAY2,
    )


def symbolic_link_loop(path: Path) -> None:
    path.symlink_to(path.name)


def broken_symbolic_link(path: Path) -> None:
    path.symlink_to(path.parent / "downloads" / "gone.mbo.dbn.zst")


@pytest.mark.parametrize(
    ("write_bad_file", "name", "message"),
    [
        (symbolic_link_loop, "loop.mbo.dbn.zst", "a symbolic link that leads to no file"),
        (broken_symbolic_link, "gone.mbo.dbn.zst", "a symbolic link that leads to no file"),
        (truncated_zstd, "cut.mbo.dbn.zst", "truncated zstd stream"),
        (corrupt_zstd_block, "flipped.mbo.dbn.zst", "cannot decode records"),
        (truncated_plain_dbn, "cut.mbo.dbn", "truncated DBN data"),
        (corrupt_header, "bad-header.mbo.dbn", "not a readable DBN file"),
        (empty_file, "empty.mbo.dbn.zst", r"empty file \(0 bytes\)"),
        (not_dbn, "notes.dbn", "neither zstd nor DBN"),
        (unsupported_schema, "bars.ohlcv-1m.dbn.zst", "schema 'ohlcv-1m' is not supported"),
        (wrong_dataset, "itch.mbo.dbn.zst", "dataset 'XNAS.ITCH' is not supported"),
        (
            record_outside_the_file_period,
            "late.mbo.dbn.zst",
            "record 8 has ts_recv .* outside the file's period",
        ),
        (
            option_without_definition,
            "opt.mbo.dbn.zst",
            r"instrument 901 \(ESM4 C5000\) .* no option definition",
        ),
    ],
)
def test_bad_file_is_a_clear_error_and_landed_data_is_untouched(
    raw: Path,
    lake: Lake,
    landed: dict[str, str],
    write_bad_file: Callable[[Path], None],
    name: str,
    message: str,
) -> None:
    bad = raw / name
    write_bad_file(bad)
    with pytest.raises(IngestError, match=message) as error:
        ingest(raw, lake)
    assert str(bad) in str(error.value)
    assert bronze_state(lake) == landed


@pytest.mark.parametrize(
    "compressor",
    [
        zstandard.ZstdCompressor(),
        zstandard.ZstdCompressor(level=19, write_checksum=True, write_content_size=False),
        zstandard.ZstdCompressor(level=-5, write_dict_id=True),
    ],
)
def test_a_zstd_file_cut_anywhere_is_refused_before_decoding(
    tmp_path: Path, compressor: zstandard.ZstdCompressor
) -> None:
    """Frames are checked whole by their headers alone: two frames with a skippable frame
    between them are one whole file, and every cut inside a frame is named (databento would
    decode a shorter stream)."""
    data = mbo_bytes()
    first = compressor.compress(data[: len(data) // 3])
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"notes"
    whole = first + skippable + compressor.compress(data[len(data) // 3 :])
    path = tmp_path / "day.mbo.dbn.zst"
    path.write_bytes(whole)
    assert check_whole(path) == "zstd"
    assert file_sha256(path) == hashlib.sha256(whole).hexdigest()
    for cut in range(4, len(whole)):  # shorter than the magic number: "neither zstd nor DBN"
        path.write_bytes(whole[:cut])
        if cut in (len(first), len(first) + len(skippable)):
            assert check_whole(path) == "zstd"  # ends where a frame ends
            continue
        with pytest.raises(IngestError, match=r"truncated zstd stream|corrupt zstd data"):
            check_whole(path)


def test_two_files_claiming_the_same_instrument_and_day_is_an_error(
    raw: Path, lake: Lake, landed: dict[str, str]
) -> None:
    other = write_dbn(
        raw / "other" / "esm4-again.mbo.dbn.zst",
        dbn.Schema.MBO,
        book_day(ESM4, DAY1, 4000.0),
        {"ESM4": ESM4},
        DAY1,
    )
    with pytest.raises(IngestError) as error:
        ingest(raw, lake)
    message = str(error.value)
    assert str(other) in message
    assert str(raw / "good.mbo.dbn.zst") in message
    assert "futures_mbo/symbol=ESM4/dt=2024-05-08 (instruments [11])" in message
    assert bronze_state(lake) == landed


def test_missing_raw_folder_is_an_error(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(IngestError, match="raw folder does not exist"):
        ingest(tmp_path / "nowhere", lake)


def test_raw_folder_without_dbn_files_is_an_error(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "notes.txt").write_text("not market data")
    with pytest.raises(IngestError, match="downloads: no DBN files"):
        ingest(tmp_path / "downloads", lake)


def test_a_second_ingest_on_the_same_lake_is_refused_while_one_runs(raw: Path, lake: Lake) -> None:
    days = book_day(ESM4, DAY1, 5000.0)
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, days, {"ESM4": ESM4}, DAY1)
    with ingest_lock(lake), pytest.raises(IngestError, match="another ingest is running"):
        ingest(raw, lake)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_raw_file_is_named(raw: Path, lake: Lake, landed: dict[str, str]) -> None:
    locked = raw / "locked.mbo.dbn.zst"
    locked.write_bytes(zstandard.ZstdCompressor().compress(mbo_bytes()))
    locked.chmod(0)
    with pytest.raises(IngestError, match=r"locked\.mbo\.dbn\.zst: cannot read the raw file"):
        ingest(raw, lake)
    assert bronze_state(lake) == landed


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only: mount needs CAP_SYS_ADMIN), unmounted afterwards."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_is_named_and_leaves_the_lake_as_it_was(
    raw: Path, small_file_system: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first day lands; the second day's file does not fit: ingest names the lake and the
    fault, exits 1, the first day is untouched and nothing of the second is visible; with
    room again the same command lands it."""
    lake = Lake(small_file_system / "lake")
    write_dbn(
        raw / "day1.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    arguments = ["ingest", "--raw", str(raw), "--lake", str(lake.root)]
    assert main(arguments) == 0
    before = bronze_state(lake)
    rng = np.random.default_rng(5)
    noise = [  # incompressible prices, sizes and ids: a partition that does not fit in 2 MiB
        mbo(ESM4, day_start_ns(DAY2) + 1000 + i, "A", "B", int(price), int(size), int(order))
        for i, (price, size, order) in enumerate(
            zip(
                rng.integers(1, 10**15, 200_000),
                rng.integers(1, 10**6, 200_000),
                rng.integers(10**6, 10**12, 200_000),
                strict=True,
            )
        )
    ]
    write_dbn(
        raw / "day2.mbo.dbn.zst",
        dbn.Schema.MBO,
        book_day(ESM4, DAY2, 5000.0) + noise,
        {"ESM4": ESM4},
        DAY2,
    )
    capsys.readouterr()
    assert main(arguments) == 1
    message = capsys.readouterr().err
    assert message.startswith("ingest failed:"), message
    assert "No space left on device" in message, message
    assert str(lake.root) in message
    assert "Traceback" not in message
    assert bronze_state(lake) == before
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_file_system)], check=True)
    assert main(arguments) == 0
    assert (lake.bronze / "futures_mbo" / "symbol=ESM4" / "dt=2024-05-09").is_dir()
