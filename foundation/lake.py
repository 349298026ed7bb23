"""The lake: one folder holding raw DBN, bronze Parquet, the selection, indexes and DuckDB."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from foundation.lake_files import MANIFEST_FILE

LAKE_ENV_VAR = "SPYMASTER_LAKE"
DEFAULT_LAKE = "lake"


class LakeError(Exception):
    """The lake's folders cannot be made (a file in the way, no permission, no space); the
    message names the path."""


@dataclass(frozen=True)
class Lake:
    """Paths of one lake; several lakes can coexist side by side."""

    root: Path

    @classmethod
    def resolve(cls, lake: str | os.PathLike[str] | None = None) -> Lake:
        """The lake named on the command line, else $SPYMASTER_LAKE, else `lake/`."""
        chosen = lake if lake is not None else os.environ.get(LAKE_ENV_VAR, DEFAULT_LAKE)
        return cls(Path(chosen).expanduser().resolve())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    def raw_day_files(
        self, day: dt.date, products: tuple[str, ...] = ("ES.FUT", "ES.OPT")
    ) -> list[Path]:
        """The products' raw DBN files of a UTC day (Databento's daily files name it)."""
        stamp = day.strftime("%Y%m%d")
        return sorted(
            path
            for product in products
            for path in (self.raw / product).rglob(f"*{stamp}*.dbn.zst")
        )

    @property
    def bronze(self) -> Path:
        return self.root / "bronze"

    @property
    def selection(self) -> Path:
        return self.root / "selection"

    @property
    def indexes(self) -> Path:
        return self.root / "indexes"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "spymaster.duckdb"

    def create_layout(self) -> None:
        """The folders every command writes into (raw stays the user's)."""
        for folder in (self.bronze, self.selection, self.indexes):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LakeError(
                    f"{self.root}: cannot make the lake's folder {folder} "
                    f"({error.strerror or error})"
                ) from None

    def table_dir(self, table: str) -> Path:
        return self.bronze / table

    def partition_dir(self, table: str, symbol: str, dt: str) -> Path:
        return self.bronze / table / f"symbol={symbol}" / f"dt={dt}"

    def manifest_glob(self, table: str) -> str:
        return str(self.bronze / table / "*" / "*" / MANIFEST_FILE)

    def is_landed(self, table: str) -> bool:
        """True when at least one partition of the bronze table has landed."""
        return any(self.table_dir(table).glob(f"*/*/{MANIFEST_FILE}"))

    def read_bronze_sql(self, table: str) -> str:
        """DuckDB table expression over a landed bronze table, as the dbt sources read it:
        each partition's data file that its manifest names, and no other file."""
        data = str(self.bronze / table / "*" / "*" / "*.parquet").replace("'", "''")
        manifests = self.manifest_glob(table).replace("'", "''")
        return (
            f"(select * exclude (filename) from read_parquet('{data}', hive_partitioning = "
            "true, hive_types = {'symbol': 'VARCHAR', 'dt': 'DATE'}, filename = true) "
            "where filename in (select parse_dirpath(filename) || '/' || data_file from "
            f"read_json('{manifests}', columns = {{data_file: 'VARCHAR'}}, filename = true)))"
        )

    def environment(self) -> dict[str, str]:
        """Environment for child processes (dbt) that must see this lake."""
        return {**os.environ, LAKE_ENV_VAR: str(self.root)}
