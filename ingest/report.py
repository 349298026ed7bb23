"""Human-readable summary of an ingest run."""

from __future__ import annotations

from pathlib import Path

from foundation.lake import Lake
from ingest.landing import IngestReport


def format_report(report: IngestReport, raw: Path, lake: Lake) -> str:
    lines = [
        f"raw {raw}: {len(report.landed)} file(s) landed, {len(report.unchanged)} unchanged",
    ]
    for source in report.landed:
        name = source.path.relative_to(raw) if source.path.is_relative_to(raw) else source.path
        schema = source.metadata.schema.value if source.metadata else "?"
        lines.append(f"{name} ({schema}, {source.records:,} records)")
        if not source.partitions:
            lines.append("  no records to land")
        for part in source.partitions:
            lines.append(f"  {part.key!s:<58} {part.stats.records:>12,} records")
        for reason, records in source.filtered.items():
            lines.append(f"  not landed: {reason:<46} {records:>12,} records")
    for key in report.removed_partitions:
        lines.append(f"removed (its source file no longer holds it): {key}")
    lines.append(f"{report.records_landed:,} records landed into {lake.bronze}")
    return "\n".join(lines)
