"""`--emit DIR`: every row the live engine emits, as Parquet tables named as in the warehouse
(`DIR/<table>.parquet`), each written to a temporary file and renamed into place when the
stream ends: a reader never sees half a table."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class ParquetTables:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(f"--emit {folder}: cannot make the folder ({error.strerror})") from None
        self._writers: dict[str, tuple[pq.ParquetWriter, Path]] = {}

    def write(self, table: str, rows: pa.RecordBatch | pa.Table) -> None:
        if table not in self._writers:
            temporary = self.folder / f".{table}.parquet.tmp"
            self._writers[table] = (pq.ParquetWriter(temporary, rows.schema), temporary)
        self._writers[table][0].write(rows)

    def close(self) -> list[Path]:
        """Finish every table; returns the files written."""
        written = []
        for table, (writer, temporary) in sorted(self._writers.items()):
            writer.close()
            target = self.folder / f"{table}.parquet"
            os.replace(temporary, target)
            written.append(target)
        self._writers.clear()
        return written

    def abort(self) -> None:
        for writer, temporary in self._writers.values():
            writer.close()
            temporary.unlink(missing_ok=True)
        self._writers.clear()
