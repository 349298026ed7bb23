"""What has been landed from which raw file: the basis of idempotent re-runs.

`bronze/_ingest/sources/<sha256>.json` describes one landed file content (its paths, header,
record counts and the partitions it produced); `bronze/_ingest/file_stats.json` remembers each
raw path's size, mtime and SHA-256 so that an unchanged file is recognised without re-hashing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from foundation.lake import Lake
from foundation.lake_files import file_system, read_json, write_json
from ingest.bronze_tables import INGEST_VERSION
from ingest.partitions import PartitionKey, read_manifest


@dataclass(frozen=True)
class FileStat:
    size_bytes: int
    mtime_ns: int
    sha256: str


class Registry:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.fs, bronze = file_system(lake.bronze)
        self.sources_dir = f"{bronze}/_ingest/sources"
        self.file_stats_path = f"{bronze}/_ingest/file_stats.json"

    def file_stats(self) -> dict[str, FileStat]:
        payload = read_json(self.fs, self.file_stats_path) or {}
        return {source_key(self.lake, path): FileStat(**stat) for path, stat in payload.items()}

    def save_file_stats(self, stats: dict[str, FileStat]) -> None:
        write_json(
            self.fs,
            self.file_stats_path,
            {path: vars(stat) for path, stat in sorted(stats.items())},
        )

    def source(self, sha256: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = read_json(self.fs, f"{self.sources_dir}/{sha256}.json")
        return record

    def save_source(self, record: dict[str, Any]) -> None:
        write_json(self.fs, f"{self.sources_dir}/{record['sha256']}.json", record)

    def drop_source(self, sha256: str) -> None:
        path = f"{self.sources_dir}/{sha256}.json"
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            self.fs.delete_file(path)

    def is_landed(self, sha256: str) -> bool:
        """True when this content landed with the current ingest version and every partition
        it produced is still in the lake, built from it."""
        record = self.source(sha256)
        if record is None or record["ingest_version"] != INGEST_VERSION:
            return False
        for key in source_partitions(record):
            manifest = read_manifest(self.lake.root, key)
            if manifest is None or manifest["sources"][0]["sha256"] != sha256:
                return False
        return True


def source_partitions(record: dict[str, Any]) -> list[PartitionKey]:
    return [
        PartitionKey(part["table"], part["symbol"], dt.date.fromisoformat(part["dt"]))
        for part in record["partitions"]
    ]


def source_key(lake: Lake, path: Path | str) -> str:
    """How the lake names a raw file (in manifests, the registry and file_stats.json): relative
    to the lake's folder when the file is inside it (`raw/ES.OPT/statistics/...`), so a lake
    moved or copied whole still knows its own files; else the absolute path. A name already
    stored is normalised the same way (lakes landed before 2026-11-25 stored absolute paths)."""
    named = Path(path)
    if not named.is_absolute():
        return named.as_posix()
    resolved = named.resolve()
    try:
        return resolved.relative_to(lake.root.resolve()).as_posix()
    except ValueError:
        return str(resolved)
