"""docs/performance.md's tables come from the benchmarks' files: each marker's table is filled
from `benchmarks/<name>.json` with its date and machine, replaced when filled again, and a
benchmark not run yet says so."""

from __future__ import annotations

import json
from pathlib import Path

from spymaster.bench.tables import growth_plot, render


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


def history(sessions: int, full_build: float, day_build: float) -> dict[str, object]:
    def stage(seconds: float) -> dict[str, float]:
        return {"seconds": seconds, "peak_rss_mib": 1000.0 + sessions}

    return {
        "sessions": sessions,
        "full": {"ingest": stage(sessions / 10), "build": stage(full_build)},
        "one_more_day": {"ingest": stage(2.0), "build": stage(day_build)},
        "one_day_into_an_empty_lake": {"ingest": stage(1.5)},
    }


GROWTH = {
    "benchmark": "growth",
    "date": "2026-01-02 03:04 UTC",
    "machine": {"cpu": "A CPU", "cores": 2, "memory_gib": 23.5, "python": "3.11.7"},
    "results": {
        "histories": [history(30, 100.0, 20.0), history(120, 400.0, 25.0)],
        "sessions_growth": 4.0,
        "full_build_growth": 4.0,
        "one_more_day_growth": 27.0 / 22.0,
        "peak_rss_growth": 1120.0 / 1030.0,
        "landing_growth": 2.0 / 1.5,
    },
}


def test_the_growth_table_and_plot_show_each_history(tmp_path: Path) -> None:
    (tmp_path / "growth.json").write_text(json.dumps(GROWTH))
    filled = render("<!-- bench:growth -->\n", tmp_path)
    assert (
        "| 120 sessions | full build 400 s (peak 1,120 MiB); one more day: ingest 2.0 s "
        "(into an empty lake 1.5 s), build 25.0 s |" in filled
    )
    assert "| 30 to 120 sessions (4x the days) | full build 4.00x, one more day 1.23x" in filled
    plot = growth_plot(GROWTH)
    assert plot.count("<polyline") == 2
    # one point per history, the full build's 400 s the highest
    assert plot.count("<circle") == 4
    full_line = plot.split("<polyline points=")[1].split('"')[1].split()
    assert len(full_line) == 2
    assert float(full_line[1].split(",")[1]) < float(full_line[0].split(",")[1])
