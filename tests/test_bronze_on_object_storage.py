"""Bronze landing on a store with object storage's semantics, killed at every step.

The store below is the lake's local folder seen through pyarrow's file system layer as object
storage behaves: a folder cannot be renamed, and moving a file is a copy then a delete. An
ingest that replaces one partition, removes another and adds a third is killed before each
of its file system operations in turn (from then on every operation fails, as after a real
kill, so no clean-up runs). Readers (the same SQL the dbt sources run) must then see every
partition whole, old or new; a plain re-run must finish the job and leave nothing behind.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import databento_dbn as dbn
import pyarrow.fs as pafs
import pytest

import ingest.partitions
import ingest.registry
from ingest.landing import ingest as run_ingest
from spymaster.lake import Lake
from spymaster.lake_files import MANIFEST_FILE
from tests.dbn_fixtures import day_start_ns, mbo, px, write_dbn
from tests.lake_queries import bronze_sql

DAY1 = dt.date(2024, 5, 8)
DAY2 = dt.date(2024, 5, 9)
ESM4, ESU4 = 11, 12
SYMBOLS = {"ESM4": ESM4, "ESU4": ESU4}


class Killed(BaseException):
    """The ingest process died (a BaseException: no `except Exception` clean-up catches it)."""


class ObjectStorageLike(pafs.FileSystemHandler):
    """A local folder with object storage's rules, dying before its `kill_at`-th change."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.local = pafs.LocalFileSystem()
        self.kill_at = kill_at
        self.changes = 0
        self.dead = False

    def _change(self) -> None:
        if self.dead or self.changes == self.kill_at:
            self.dead = True
            raise Killed(f"killed before change {self.changes}")
        self.changes += 1

    def move(self, src: str, dest: str) -> None:
        if self.local.get_file_info(src).type == pafs.FileType.Directory:
            raise OSError(f"{src}: object storage cannot rename a folder")
        self._change()
        self.local.copy_file(src, dest)
        self._change()
        self.local.delete_file(src)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self._change()
        return self.local.open_output_stream(path)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._change()
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._change()
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._change()
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("not used by the lake")

    def delete_file(self, path: str) -> None:
        self._change()
        self.local.delete_file(path)

    def copy_file(self, src: str, dest: str) -> None:
        self._change()
        self.local.copy_file(src, dest)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise OSError("object storage cannot append")

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        self._read()
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._read()
        return self.local.get_file_info(selector)

    def open_input_stream(self, path: str) -> Any:
        self._read()
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        self._read()
        return self.local.open_input_file(path)

    def _read(self) -> None:
        if self.dead:
            raise Killed("dead")

    def normalize_path(self, path: str) -> str:
        return path

    def get_type_name(self) -> str:
        return "object-storage-like"

    def equals(self, other: Any) -> bool:
        return self is other


def object_storage(
    handler: ObjectStorageLike,
) -> Callable[[Any], tuple[pafs.FileSystem, str]]:
    def file_system(root: Any) -> tuple[pafs.FileSystem, str]:
        return pafs.PyFileSystem(handler), str(Path(root).resolve())

    return file_system


def day_records(day: dt.date, contracts: dict[int, float]) -> list[dbn.MBOMsg]:
    t0 = day_start_ns(day) + 3600 * 10**9
    records = []
    for step in range(3):
        for order, (instrument, price) in enumerate(contracts.items(), start=1):
            records.append(
                mbo(instrument, t0 + 10 * step + order, "A", "B", px(price + step), 1, 10 * order)
            )
    return records


def partitions(lake: Lake) -> dict[tuple[str, dt.date], list[tuple[Any, ...]]]:
    """Each futures partition's rows as readers see them."""
    seen: dict[tuple[str, dt.date], list[tuple[Any, ...]]] = {}
    if not lake.is_landed("futures_mbo"):
        return seen
    for symbol, day, *row in bronze_sql(
        lake,
        "select symbol, dt, record_index, instrument_id, price from futures_mbo "
        "order by symbol, dt, record_index",
    ):
        seen.setdefault((symbol, day), []).append(tuple(row))
    return seen


def leftovers(lake: Lake) -> list[str]:
    """Files of partition folders that no manifest names, and staging."""
    found = []
    for folder in sorted(lake.bronze.glob("*/symbol=*/dt=*")):
        manifest = folder / MANIFEST_FILE
        named = {MANIFEST_FILE}
        if manifest.exists():
            named.add(json.loads(manifest.read_text())["data_file"])
        found += [str(path) for path in folder.iterdir() if path.name not in named]
    staging = lake.bronze / "_ingest" / "staging"
    return found + ([str(staging)] if staging.exists() else [])


def test_an_ingest_killed_at_any_step_leaves_each_partition_whole_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    source = write_dbn(
        raw / "a.mbo.dbn.zst",
        dbn.Schema.MBO,
        day_records(DAY1, {ESM4: 5000.0, ESU4: 5060.0}),
        SYMBOLS,
        DAY1,
    )
    old_lake = Lake(tmp_path / "old")
    run_ingest(raw, old_lake)
    old = partitions(old_lake)
    assert sorted(old) == [("ESM4", DAY1), ("ESU4", DAY1)]

    # the new raw folder: ESM4 repriced, ESU4 gone from the file, a new day for ESM4
    write_dbn(source, dbn.Schema.MBO, day_records(DAY1, {ESM4: 4990.0}), SYMBOLS, DAY1)
    write_dbn(
        raw / "b.mbo.dbn.zst", dbn.Schema.MBO, day_records(DAY2, {ESM4: 4995.0}), SYMBOLS, DAY2
    )
    clean = Lake(tmp_path / "clean")
    shutil.copytree(old_lake.root, clean.root)
    counting = ObjectStorageLike()
    with monkeypatch.context() as patch:
        for module in (ingest.partitions, ingest.registry):
            patch.setattr(module, "file_system", object_storage(counting))
        run_ingest(raw, clean)
    new = partitions(clean)
    assert sorted(new) == [("ESM4", DAY1), ("ESM4", DAY2)]
    assert leftovers(clean) == []
    changes = counting.changes
    assert changes > 20

    for kill_at in range(changes):
        lake = Lake(tmp_path / f"killed-{kill_at}")
        shutil.copytree(old_lake.root, lake.root)
        dying = ObjectStorageLike(kill_at)
        with monkeypatch.context() as patch:
            for module in (ingest.partitions, ingest.registry):
                patch.setattr(module, "file_system", object_storage(dying))
            with pytest.raises(Killed):
                run_ingest(raw, lake)
        seen = partitions(lake)
        for key in sorted(old.keys() | new.keys()):
            assert seen.get(key) in (old.get(key), new.get(key)), (kill_at, key)

        run_ingest(raw, lake)  # the next run, on the plain local file system
        assert partitions(lake) == new, kill_at
        assert leftovers(lake) == [], kill_at
        shutil.rmtree(lake.root)
