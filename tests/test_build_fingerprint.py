"""Incremental engine models rebuild a contract-day exactly when something it reads changed:
the fingerprint covers the settings and every bronze partition the build reads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from book_engine.warehouse import SURFACE_INPUTS
from cluster.planning import build_fingerprint
from gex.warehouse import QUOTE_INPUTS

SYMBOL = "ESM4"
MONDAY, TUESDAY = dt.date(2024, 3, 11), dt.date(2024, 3, 12)


def land(lake: Path, table: str, day: dt.date, sha256: str) -> None:
    """A bronze partition's manifest, as ingest writes it (only what the fingerprint reads)."""
    folder = lake / "bronze" / table / f"symbol={SYMBOL}" / f"dt={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_manifest.json").write_text(json.dumps({"sources": [{"sha256": sha256}]}))


def fingerprints(lake: Path, settings: str = "settings") -> dict[str, str]:
    return {
        f"{name} {day:%a}": build_fingerprint(str(lake), inputs, SYMBOL, day, settings)
        for name, inputs in (("surfaces", SURFACE_INPUTS), ("quotes", QUOTE_INPUTS))
        for day in (MONDAY, TUESDAY)
    }


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {key for key in before if before[key] != after[key]}


def market(lake: Path) -> None:
    for day in (MONDAY, TUESDAY):
        for table in ("futures_mbo", "futures_definitions", "options_mbo", "options_definitions"):
            land(lake, table, day, f"{table}-{day}")


def test_statistics_landed_later_rebuild_that_day_and_the_days_after(tmp_path: Path) -> None:
    market(tmp_path)
    land(tmp_path, "options_statistics", MONDAY, "monday-oi")
    before = fingerprints(tmp_path)
    land(tmp_path, "options_statistics", TUESDAY, "tuesday-oi")  # Tuesday's file lands late
    assert changed(before, fingerprints(tmp_path)) == {"quotes Tue"}
    before = fingerprints(tmp_path)
    land(tmp_path, "options_statistics", MONDAY, "monday-oi-corrected")
    # Monday's open interest may be Tuesday's latest too
    assert changed(before, fingerprints(tmp_path)) == {"quotes Mon", "quotes Tue"}


def test_each_model_follows_its_own_inputs_and_settings(tmp_path: Path) -> None:
    market(tmp_path)
    before = fingerprints(tmp_path)
    land(tmp_path, "futures_mbo", TUESDAY, "re-landed")
    assert changed(before, fingerprints(tmp_path)) == {"surfaces Tue", "quotes Tue"}
    before = fingerprints(tmp_path)
    land(tmp_path, "options_mbo", MONDAY, "re-landed")
    assert changed(before, fingerprints(tmp_path)) == {"quotes Mon"}
    before = fingerprints(tmp_path)
    land(tmp_path, "futures_definitions", MONDAY, "new tick")
    assert changed(before, fingerprints(tmp_path)) == {"surfaces Mon", "surfaces Tue"}
    before = fingerprints(tmp_path)
    land(tmp_path, "futures_trades", MONDAY, "not read")
    assert changed(before, fingerprints(tmp_path)) == set()
    assert changed(before, fingerprints(tmp_path, "other settings")) == set(before)
