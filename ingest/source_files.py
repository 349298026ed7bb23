"""Raw DBN files: find them, fingerprint them, check they are whole, decode their records.

Records are read through the databento package's record arrays (`DBNStore.to_ndarray`),
never DataFrames. A file is recognised by its DBN metadata, not its name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import databento as db
import databento_dbn
import numpy as np
import zstandard
from databento.common.error import BentoError, BentoWarning
from databento.common.symbology import InstrumentMap

from foundation.dbn_facts import DATASET
from ingest.bronze_tables import SourceSchema
from ingest.errors import IngestError

DBN_SUFFIXES = (".dbn", ".dbn.zst")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBN_MAGIC = b"DBN"
_READ_BYTES = 1 << 20


def find_dbn_files(raw: Path) -> list[Path]:
    """Every `*.dbn` / `*.dbn.zst` file under `raw`, sorted, following symlinked folders (a
    raw folder often links to download folders); other files are not ours. A name like ours
    that is no readable file (a broken link, a link loop) is an error, never skipped."""
    if not raw.is_dir():
        raise IngestError(f"{raw}: raw folder does not exist")
    found = []
    seen = set()
    for folder, subfolders, names in os.walk(raw, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink cycle, or a folder linked twice
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [
            Path(folder) / name
            for name in names
            if name.endswith(DBN_SUFFIXES) and not name.startswith(".")
        ]
    for path in found:
        if not path.is_file():
            kind = (
                "a symbolic link that leads to no file (broken, or a loop)"
                if path.is_symlink()
                else "not a regular file"
            )
            raise IngestError(f"{path}: named like a DBN file but {kind}")
    files = sorted(found)
    if not files:
        raise IngestError(f"{raw}: no DBN files (*.dbn, *.dbn.zst) found")
    return files


@dataclass(frozen=True)
class FileFingerprint:
    """What identifies a raw file's content, and proof that it is complete."""

    path: Path
    size_bytes: int
    mtime_ns: int
    sha256: str
    compression: str  # "zstd" or "none"


def file_sha256(path: Path, stop: threading.Event | None = None) -> str | None:
    """SHA-256 of the file's bytes; None when `stop` is set before the end."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            if stop is not None and stop.is_set():
                return None
            digest.update(chunk)
    return digest.hexdigest()


def check_whole(path: Path) -> str:
    """The file's compression ("zstd" or "none"), after checking that a zstd file ends with
    the end of a frame. The databento reader takes a truncated zstd stream for a shorter
    one (it warns at most when the cut leaves part of a record), so this is what turns a
    cut-off download into an error before anything is landed. The frames are walked by
    their headers (RFC 8878) without decompressing: decoding the records is the only
    decompression, and a corrupt block fails there."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path}: empty file (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(len(_ZSTD_MAGIC))
        if head.startswith(_ZSTD_MAGIC):
            _check_zstd_frames(path, handle.fileno(), size)
            return "zstd"
    if head.startswith(_DBN_MAGIC):
        return "none"
    raise IngestError(f"{path}: neither zstd nor DBN (the file does not start with a magic number)")


_ZSTD_FRAME = 0xFD2FB528
_ZSTD_SKIPPABLE = 0x184D2A50  # the 16 magic numbers 0x184D2A50-0x184D2A5F
_RLE_BLOCK, _RESERVED_BLOCK = 1, 3


def _check_zstd_frames(path: Path, fd: int, size: int) -> None:
    truncated = f"{path}: truncated zstd stream (the last frame is incomplete)"
    position = 0
    while position < size:
        header = os.pread(fd, 18, position)  # magic, descriptor, window, dictionary, size
        if len(header) < 8:
            raise IngestError(truncated)
        magic = int.from_bytes(header[:4], "little")
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
            position += 8 + int.from_bytes(header[4:8], "little")
            continue
        if magic != _ZSTD_FRAME:
            raise IngestError(f"{path}: corrupt zstd data (no frame starts at byte {position})")
        descriptor = header[4]
        if descriptor & 0x08:
            raise IngestError(f"{path}: corrupt zstd data (reserved bit set at byte {position})")
        single_segment = descriptor >> 5 & 1
        content_size_bytes = (single_segment, 2, 4, 8)[descriptor >> 6]
        position += 5 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3] + content_size_bytes
        last_block = False
        while not last_block:
            block = os.pread(fd, 3, position)
            if len(block) < 3:
                raise IngestError(truncated)
            value = int.from_bytes(block, "little")
            last_block, kind, block_size = bool(value & 1), value >> 1 & 3, value >> 3
            if kind == _RESERVED_BLOCK:
                raise IngestError(
                    f"{path}: corrupt zstd data (reserved block type at byte {position})"
                )
            position += 3 + (1 if kind == _RLE_BLOCK else block_size)
        position += 4 * (descriptor >> 2 & 1)  # the content checksum
    if position > size:
        raise IngestError(truncated)


@dataclass(frozen=True)
class SourceMetadata:
    """The DBN header of one raw file, as far as landing needs it."""

    dataset: str
    schema: SourceSchema
    stype_in: str | None
    start_ns: int
    end_ns: int | None
    symbols: tuple[str, ...]
    dbn_version: int

    @property
    def start_date(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.start_ns / 1e9, tz=dt.UTC).date()


class SourceReader:
    """Opens a raw file through databento, checks its header and decodes it in chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", BentoWarning)
                self._store = db.DBNStore.from_file(path)
                raw_metadata = self._store.metadata
        except (BentoError, databento_dbn.DBNError, ValueError, zstandard.ZstdError) as error:
            raise IngestError(f"{path}: not a readable DBN file ({error})") from error
        schema_name = str(raw_metadata.schema) if raw_metadata.schema is not None else None
        if raw_metadata.dataset != DATASET:
            raise IngestError(
                f"{path}: dataset {raw_metadata.dataset!r} is not supported (expected {DATASET})"
            )
        if schema_name not in {schema.value for schema in SourceSchema}:
            supported = ", ".join(schema.value for schema in SourceSchema)
            raise IngestError(
                f"{path}: schema {schema_name!r} is not supported (ingest lands {supported})"
            )
        if raw_metadata.ts_out:
            raise IngestError(
                f"{path}: files with ts_out (live gateway send times) are not supported"
            )
        self._raw_metadata = raw_metadata
        self.metadata = SourceMetadata(
            dataset=raw_metadata.dataset,
            schema=SourceSchema(schema_name),
            stype_in=str(raw_metadata.stype_in) if raw_metadata.stype_in is not None else None,
            start_ns=int(raw_metadata.start),
            end_ns=int(raw_metadata.end) if raw_metadata.end is not None else None,
            symbols=tuple(raw_metadata.symbols),
            dbn_version=int(raw_metadata.version),
        )
        self._expected_rtype = int(
            databento_dbn.RType.from_schema(databento_dbn.Schema(schema_name)).value
        )

    def symbology(self) -> InstrumentMap:
        """instrument_id -> raw symbol by date, from the file's own metadata mappings."""
        instrument_map = InstrumentMap()
        instrument_map.insert_metadata(self._raw_metadata)
        return instrument_map

    def chunks(self, chunk_records: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (offset of the first record, records) until the file is exhausted.

        Decoded bytes that do not make whole records are an error (databento warns of them);
        every record is checked for the schema's rtype and record length.
        """
        offset = 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", BentoWarning)
                for chunk in self._store.to_ndarray(count=chunk_records):
                    if len(chunk) == 0:
                        continue
                    self._check_headers(chunk, offset)
                    yield offset, chunk
                    offset += len(chunk)
        except BentoWarning as warning:
            raise IngestError(f"{self.path}: truncated DBN data ({warning})") from warning
        except (BentoError, databento_dbn.DBNError, zstandard.ZstdError) as error:
            raise IngestError(f"{self.path}: cannot decode records ({error})") from error

    def _check_headers(self, chunk: np.ndarray, offset: int) -> None:
        wrong_rtype = np.flatnonzero(chunk["rtype"] != self._expected_rtype)
        if wrong_rtype.size:
            row = int(wrong_rtype[0])
            raise IngestError(
                f"{self.path}: record {offset + row} has rtype {int(chunk['rtype'][row])}, "
                f"expected {self._expected_rtype} for schema {self.metadata.schema} (corrupt file)"
            )
        wrong_length = np.flatnonzero(chunk["length"].astype(np.int64) * 4 != chunk.dtype.itemsize)
        if wrong_length.size:
            row = int(wrong_length[0])
            raise IngestError(
                f"{self.path}: record {offset + row} declares "
                f"{int(chunk['length'][row]) * 4} bytes, expected {chunk.dtype.itemsize} "
                "(corrupt file)"
            )
