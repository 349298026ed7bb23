"""docs/performance.md's tables, one per benchmark, filled from `benchmarks/<name>.json`: the
figures are quoted from the files `spymaster bench` wrote, with their date and machine, never
typed by hand. Each table sits between `<!-- bench:<name> -->` and `<!-- /bench -->`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from foundation.project import PROJECT_ROOT
from spymaster.bench.record import RESULTS_DIR

PERFORMANCE_DOC = PROJECT_ROOT / "docs" / "performance.md"
Rows = list[tuple[str, str]]


def _ms(measured: Mapping[str, float]) -> str:
    return f"{measured['p50']:,.0f} / {measured['p99']:,.0f} / {measured['max']:,.0f} ms"


def _ingest(r: Mapping[str, Any]) -> Rows:
    return [
        ("records (one zstd DBN file, one worker)", f"{r['records']:,}"),
        ("landing", f"{r['ingest_seconds']:.2f} s, {r['records_per_second']:,.0f} records/s"),
        ("peak resident memory", f"{r['peak_rss_mib']:,.0f} MiB"),
    ]


def _engine(r: Mapping[str, Any]) -> Rows:
    return [
        ("decode with databento", f"{r['decode_rate']:,.0f} records/s"),
        ("front contract's records", f"{r['records']:,}"),
        (
            "book replay, one core",
            f"{r['replay_rate']:,.0f} msgs/s ({r['replay_to_decode']:.2f}x the decode rate)",
        ),
        ("with the 1-second surfaces", f"{r['surfaces_rate']:,.0f} msgs/s"),
        ("peak resident memory", f"{r['peak_rss_mib']:,.0f} MiB"),
    ]


def _options(r: Mapping[str, Any]) -> Rows:
    return [
        ("options MBO records", f"{r['records']:,} ({r['options']:,} options)"),
        (
            "engine + implied volatility + gamma exposure",
            f"{r['quotes']:.1f} s, {r['quotes_rate']:,.0f} records/s, "
            f"{r['quotes_cores']:.2f} cores busy",
        ),
        ("option-seconds", f"{r['quote_rows']:,} ({r['iv_ok']:,} with a volatility)"),
        ("zero-gamma profile", f"{r['zero_gamma']:.1f} s, {r['zero_gamma_rate']:,.0f} seconds/s"),
        ("engine + GEX", f"{r['engine_and_gex']:.1f} s, {r['total_rate']:,.0f} records/s"),
        ("peak resident memory", f"{r['peak_rss_mib']:,.0f} MiB"),
    ]


def _retrieval(r: Mapping[str, Any]) -> Rows:
    return [
        (
            f"{m['vectors']:,} vectors x {m['dimensions']} features ({m['search']})",
            f"build {m['build']:.2f} s; query p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms; "
            f"recall {m['recall']:.4f}; peak {m['peak_rss_mib']:,.0f} MiB",
        )
        for m in r.values()
    ]


def _hud(r: Mapping[str, Any]) -> Rows:
    return [
        ("first full picture of a session", f"p50 {r['open_p50_ms']:,.0f} ms"),
        ("seek, drawn", f"p50 {r['seek_p50_ms']:,.0f} ms, p95 {r['seek_p95_ms']:,.0f} ms"),
        (
            "replay at 60x",
            f"{r['replay_fps']:.1f} frames/s (slowest second {r['replay_fps_min']:.1f}), "
            f"{r['replay_behind']} seconds missing",
        ),
        (
            "20 replay clients at 10x",
            f"first frame p50 {r['client_start_p50_ms']:,.0f} ms; {r['client_late_frames']} "
            "frames late",
        ),
        ("server peak resident memory", f"{r['server_peak_rss_mib']:,.0f} MiB"),
    ]


def _live(r: Mapping[str, Any]) -> Rows:
    paced, full = r["paced"], r["max_speed"]
    return [
        ("heatmap drawn (goal p99 <= 60 ms)", _ms(paced["heatmap_drawn_ms"])),
        ("layers drawn (goal p99 <= 400 ms)", _ms(paced["layers_drawn_ms"])),
        ("session tables drawn (goal p99 <= 2 s)", _ms(paced["session_drawn_ms"])),
        ("engine's book row", _ms(paced["book_row_ms"])),
        ("heatmap's tables complete", _ms(paced["heatmap_tables_ms"])),
        ("layer tables complete", _ms(paced["layers_tables_ms"])),
        ("session tables complete", _ms(paced["session_tables_ms"])),
        (
            "whole day at --speed max (goal >= 20x)",
            f"{full['records']:,} records in {full['wall_seconds']:,.0f} s: "
            f"{full['times_real_time']:,.0f}x real time",
        ),
    ]


def _ray(r: Mapping[str, Any]) -> Rows:
    # a model with no day to replay is one whose partitions another model's replay writes
    return [
        (
            name.removeprefix("engine_"),
            f"{m['partitions']} days: {m['in_process_seconds']:.1f} s here, "
            f"{m['ray_seconds']:.1f} s on Ray (task median {m['task_median_seconds']:.2f} s)"
            if m["partitions"]
            else "written by another model's replay: nothing of its own to run",
        )
        for name, m in r["models"].items()
    ]


def _day(r: Mapping[str, Any]) -> Rows:
    stages = r["stages"]
    return [
        (
            "MBO records",
            f"{r['records']['futures_mbo']:,} futures + {r['records']['options_mbo']:,} options",
        ),
        ("raw DBN to every gold table", f"{r['raw_to_gold_seconds']:.1f} s"),
        (
            "ingest, 2 workers",
            f"{stages['ingest']['seconds']:.1f} s "
            f"({r['ingest_records_per_second_per_worker']:,.0f} records/s per worker)",
        ),
        ("build (every model and data test)", f"{stages['build']['seconds']:.1f} s"),
        ("peak resident memory", f"{r['peak_rss_mib']:,.0f} MiB"),
    ]


def _growth(r: Mapping[str, Any]) -> Rows:
    rows = []
    for history in r["histories"]:
        full, day = history["full"], history["one_more_day"]
        empty = history["one_day_into_an_empty_lake"]
        rows.append(
            (
                f"{history['sessions']} sessions",
                f"full build {full['build']['seconds']:.0f} s (peak "
                f"{full['build']['peak_rss_mib']:,.0f} MiB); one more day: ingest "
                f"{day['ingest']['seconds']:.1f} s (into an empty lake "
                f"{empty['ingest']['seconds']:.1f} s), build {day['build']['seconds']:.1f} s",
            )
        )
    first, last = r["histories"][0]["sessions"], r["histories"][-1]["sessions"]
    return [
        *rows,
        (
            f"{first} to {last} sessions ({r['sessions_growth']:.0f}x the days)",
            f"full build {r['full_build_growth']:.2f}x, one more day "
            f"{r['one_more_day_growth']:.2f}x, build peak memory {r['peak_rss_growth']:.2f}x",
        ),
        (
            f"landing a day into {last} sessions",
            f"{r['landing_growth']:.2f}x landing it into an empty lake",
        ),
    ]


ROWS: dict[str, Callable[[Mapping[str, Any]], Rows]] = {
    "ingest": _ingest,
    "engine": _engine,
    "options": _options,
    "retrieval": _retrieval,
    "hud": _hud,
    "live": _live,
    "ray": _ray,
    "day": _day,
    "growth": _growth,
}


def table(record: Mapping[str, Any]) -> str:
    """A benchmark's table, headed by the run's date and machine."""
    machine = record["machine"]
    lines = [
        f"Run on {record['date']}: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}.",
        "",
        "| measure | result |",
        "|---|---|",
        *(
            f"| {measure} | {value} |"
            for measure, value in ROWS[record["benchmark"]](record["results"])
        ),
    ]
    return "\n".join(lines)


def render(document: str, results_dir: Path = RESULTS_DIR) -> str:
    """`document` with each benchmark's table filled from its file (a benchmark not run yet
    says so)."""

    def filled(match: re.Match[str]) -> str:
        name = match.group(1)
        path = results_dir / f"{name}.json"
        body = (
            table(json.loads(path.read_text()))
            if path.exists()
            else f"Not measured yet: run `uv run spymaster bench --only {name}`."
        )
        return f"<!-- bench:{name} -->\n{body}\n<!-- /bench -->\n"

    # a table already there is replaced; a marker never filled gets one
    table_so_far = r"(?:(?:(?!<!-- bench:).)*?\n<!-- /bench -->\n|)"
    return re.sub(rf"<!-- bench:(\w+) -->\n{table_so_far}", filled, document, flags=re.DOTALL)


GROWTH_PLOT = PROJECT_ROOT / "docs" / "growth.svg"


def growth_plot(record: Mapping[str, Any]) -> str:
    """An SVG line plot of the growth benchmark: build seconds against the sessions in the
    lake, the full build and one more day (its ingest and build)."""
    histories = record["results"]["histories"]
    sessions = [h["sessions"] for h in histories]
    series = {
        "full build": [h["full"]["build"]["seconds"] for h in histories],
        "one more day (ingest + build)": [
            h["one_more_day"]["ingest"]["seconds"] + h["one_more_day"]["build"]["seconds"]
            for h in histories
        ],
    }
    width, height, left, bottom, top, right = 560, 300, 60, 40, 20, 20
    x_max = max(sessions)
    y_max = max(max(values) for values in series.values()) * 1.1

    def x(value: float) -> float:
        return left + (width - left - right) * value / x_max

    def y(value: float) -> float:
        return height - bottom - (height - bottom - top) * value / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{x(x_max)}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{top}" stroke="black"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle">'
        "sessions in the lake</text>",
        f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">seconds</text>',
    ]
    for value in sessions:
        parts.append(
            f'<text x="{x(value):.1f}" y="{y(0) + 14:.1f}" text-anchor="middle">{value}</text>'
        )
    step = 10 ** max(0, len(str(int(y_max))) - 1)
    for tick in range(0, int(y_max) + 1, step):
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    for (label, values), colour, row in zip(
        series.items(), ("#1f5fa8", "#c0392b"), (0, 1), strict=True
    ):
        points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(sessions, values, strict=True))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        parts.extend(
            f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
            for s, v in zip(sessions, values, strict=True)
        )
        parts.append(
            f'<text x="{left + 12}" y="{top + 12 + 16 * row}" fill="{colour}">{label}</text>'
        )
    parts.append(
        f'<text x="{width - right}" y="{top + 12}" text-anchor="end">run on {record["date"]}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def update_performance_doc() -> None:
    """docs/performance.md with every table from the files now, and the growth benchmark's
    plot (each written whole)."""
    part = PERFORMANCE_DOC.with_name(f".{PERFORMANCE_DOC.name}.part")
    part.write_text(render(PERFORMANCE_DOC.read_text()))
    part.replace(PERFORMANCE_DOC)
    growth = RESULTS_DIR / "growth.json"
    if growth.exists():
        part = GROWTH_PLOT.with_name(f".{GROWTH_PLOT.name}.part")
        part.write_text(growth_plot(json.loads(growth.read_text())))
        part.replace(GROWTH_PLOT)
