"""Raw DBN files: find them, fingerprint them, check they are whole, decode their records.

Records are read through the databento package's record arrays (`DBNStore.to_ndarray`),
never DataFrames. A file is recognised by its DBN metadata, not its name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
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

from ingest.bronze_tables import SourceSchema
from ingest.errors import IngestError
from spymaster.dbn_facts import DATASET

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
    decoded_bytes: int  # DBN bytes after decompression


def fingerprint(path: Path) -> FileFingerprint:
    """SHA-256 of the file and, in the same read, a check that every zstd frame is complete.

    The databento reader tolerates a truncated zstd stream (it warns at most), so this is
    what turns a cut-off download into an error before anything is landed.
    """
    stat = path.stat()
    if stat.st_size == 0:
        raise IngestError(f"{path}: empty file (0 bytes)")
    digest = hashlib.sha256()
    decoded_bytes = 0
    with path.open("rb") as handle:
        head = handle.read(_READ_BYTES)
        if head.startswith(_ZSTD_MAGIC):
            compression = "zstd"
            decompressor = zstandard.ZstdDecompressor()
            frame = decompressor.decompressobj()
            frame_open = False
            chunk = head
            while chunk:
                digest.update(chunk)
                pending = chunk
                while pending:
                    try:
                        decoded_bytes += len(frame.decompress(pending))
                    except zstandard.ZstdError as error:
                        raise IngestError(f"{path}: corrupt zstd data ({error})") from error
                    frame_open = not frame.eof
                    if frame.eof:
                        pending = frame.unused_data
                        frame = decompressor.decompressobj()
                    else:
                        pending = b""
                chunk = handle.read(_READ_BYTES)
            if frame_open:
                raise IngestError(f"{path}: truncated zstd stream (the last frame is incomplete)")
        elif head.startswith(_DBN_MAGIC):
            compression = "none"
            chunk = head
            while chunk:
                digest.update(chunk)
                decoded_bytes += len(chunk)
                chunk = handle.read(_READ_BYTES)
        else:
            raise IngestError(
                f"{path}: neither zstd nor DBN (the file does not start with a magic number)"
            )
    return FileFingerprint(
        path=path,
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=digest.hexdigest(),
        compression=compression,
        decoded_bytes=decoded_bytes,
    )


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

    def chunks(self, chunk_records: int, decoded_bytes: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (offset of the first record, records) until the file is exhausted.

        `decoded_bytes` (from the fingerprint) must be exactly the header plus whole records.
        Every record is checked for the schema's rtype and record length.
        """
        offset = 0
        itemsize = 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", BentoWarning)
                for chunk in self._store.to_ndarray(count=chunk_records):
                    if len(chunk) == 0:
                        continue
                    itemsize = chunk.dtype.itemsize
                    self._check_headers(chunk, offset)
                    yield offset, chunk
                    offset += len(chunk)
        except BentoWarning as warning:
            raise IngestError(f"{self.path}: truncated DBN data ({warning})") from warning
        except (BentoError, databento_dbn.DBNError, zstandard.ZstdError) as error:
            raise IngestError(f"{self.path}: cannot decode records ({error})") from error
        header_bytes = self._header_bytes()
        if itemsize and header_bytes + offset * itemsize != decoded_bytes:
            raise IngestError(
                f"{self.path}: {decoded_bytes - header_bytes} bytes of records do not make "
                f"{offset} whole records of {itemsize} bytes (truncated or corrupt)"
            )

    def _header_bytes(self) -> int:
        prefix = self._store.reader.read(8)
        return 8 + int.from_bytes(prefix[4:8], "little")

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
