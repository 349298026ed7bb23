"""docs/performance.md's tables come from the benchmarks' files: each marker's table is filled
from `benchmarks/<name>.json` with its date and machine, replaced when filled again, and a
benchmark not run yet says so."""

from __future__ import annotations

import json
from pathlib import Path

from spymaster.bench.tables import render


def latency(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p99": p99, "max": p99 + 1, "count": 120}


LIVE = {
    "benchmark": "live",
    "date": "2026-01-02 03:04 UTC",
    "machine": {"cpu": "A CPU", "cores": 2, "memory_gib": 23.5, "python": "3.11.7"},
    "results": {
        "day": "2024-03-19",
        "paced": {
            "heatmap_drawn_ms": latency(25, 59),
            "layers_drawn_ms": latency(200, 330),
            "session_drawn_ms": latency(400, 900),
            "book_row_ms": latency(5, 12),
            "heatmap_tables_ms": latency(11, 17),
            "layers_tables_ms": latency(180, 310),
            "session_tables_ms": latency(350, 850),
        },
        "max_speed": {
            "records": 36_263_739,
            "market_seconds": 86_400.0,
            "wall_seconds": 55.0,
            "times_real_time": 1571.0,
        },
    },
}
DOC = "# P\n\n## live\n\ntext\n\n<!-- bench:live -->\n\n## ingest\n\n<!-- bench:ingest -->\n"


def test_each_table_is_filled_from_its_file_and_filled_again_in_place(tmp_path: Path) -> None:
    (tmp_path / "live.json").write_text(json.dumps(LIVE))
    once = render(DOC, tmp_path)
    assert "Run on 2026-01-02 03:04 UTC: A CPU, 2 cores, 23.5 GiB, Python 3.11.7." in once
    assert "| heatmap drawn (goal p99 <= 60 ms) | 25 / 59 / 60 ms |" in once
    assert "| whole day at --speed max (goal >= 20x) | 36,263,739 records in 55 s: 1,571x" in once
    assert "Not measured yet: run `uv run spymaster bench --only ingest`." in once
    assert once.count("<!-- /bench -->") == 2
    assert "<!-- /bench -->\n\n## ingest" in once  # the next section is kept, apart
    assert render(once, tmp_path) == once
    LIVE["results"]["paced"]["heatmap_drawn_ms"] = latency(30, 70)
    (tmp_path / "live.json").write_text(json.dumps(LIVE))
    again = render(once, tmp_path)
    assert "| heatmap drawn (goal p99 <= 60 ms) | 30 / 70 / 71 ms |" in again
    assert "25 / 59 / 60 ms" not in again
    assert again.count("<!-- bench:live -->") == 1
