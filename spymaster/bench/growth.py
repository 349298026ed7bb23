"""`spymaster bench --only growth`: what a lake's history costs, and what one more day costs.

One tiny generated market (`spymaster simulate --scale tiny --strike-range 20`, seed 41) of
121 sessions is generated once into target/bench/growth/raw. For each history of 30, 60 and
120 sessions: a fresh lake lands the first sessions' files and builds them at once (the full
build), then lands the next session's files and builds again (one more day); and that next
session alone is landed into an empty lake (what landing a day costs without a history). Each
stage runs in its own process tree (`spymaster ingest --workers 2`, `spymaster build`: every
model and data test); per stage, wall time and the tree's peak resident memory, and the
slowest dbt nodes of each build. Each lake is deleted once measured.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT
from spymaster.bench.day import _node_times, run_stage
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market

HISTORIES = (30, 60, 120)
MARKET = MarketConfig(sessions=max(HISTORIES) + 1, seed=41, scale=SCALES["tiny"], strike_range=20)
FOLDER = PROJECT_ROOT / "target" / "bench" / "growth"


def growth_raw(folder: Path) -> Path:
    """The market's raw DBN files, generated once (a marker says they are complete)."""
    raw = folder / "raw"
    marker = folder / "generated.json"
    wanted = json.dumps(
        {"sessions": MARKET.sessions, "seed": MARKET.seed, "strike_range": MARKET.strike_range}
    )
    if marker.exists() and marker.read_text() == wanted:
        return raw
    if raw.exists():  # an interrupted earlier run: start again
        shutil.rmtree(raw)
    print(f"bench growth: generating {MARKET.sessions} sessions into {raw} (once)", flush=True)
    simulate_market(raw, MARKET, workers=2)
    marker.write_text(wanted)
    return raw


def file_days(raw: Path) -> list[str]:
    """The UTC days of the market's DBN files (their names' yyyymmdd), in order."""
    return sorted({path.name.split(".")[0].rsplit("-", 1)[1] for path in raw.rglob("*.dbn.zst")})


def link_days(raw: Path, lake: Lake, days: Sequence[str]) -> None:
    """Hard links in the lake's raw folder to the market's files of `days`."""
    wanted = set(days)
    for path in raw.rglob("*.dbn.zst"):
        if path.name.split(".")[0].rsplit("-", 1)[1] in wanted:
            link = lake.raw / path.relative_to(raw)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.link(path, link)


def _stages(lake: Lake, target: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    spymaster = str(Path(sys.executable).with_name("spymaster"))
    env = lake.environment()
    ingest = run_stage(
        "ingest",
        [spymaster, "ingest", "--lake", str(lake.root), "--raw", str(lake.raw), "--workers", "2"],
        env,
    )
    build = run_stage(
        "build", [spymaster, "build", "--lake", str(lake.root), "--target-path", str(target)], env
    )
    build["slowest_nodes"] = _node_times(target / "run_results.json")[:8]
    return ingest, build


def bench_growth(folder: Path = FOLDER) -> dict[str, Any]:
    raw = growth_raw(folder)
    days = file_days(raw)
    histories = []
    for sessions in HISTORIES:
        lake = Lake(folder / f"lake-{sessions}")
        empty = Lake(folder / "lake-empty")
        for old in (lake, empty):
            if old.root.exists():
                shutil.rmtree(old.root)
        target = folder / "dbt-target"
        link_days(raw, lake, days[:sessions])
        full_ingest, full_build = _stages(lake, target)
        link_days(raw, lake, days[: sessions + 1])
        day_ingest, day_build = _stages(lake, target)
        link_days(raw, empty, days[sessions : sessions + 1])
        spymaster = str(Path(sys.executable).with_name("spymaster"))
        empty_ingest = run_stage(
            "ingest",
            [spymaster, "ingest", "--lake", str(empty.root), "--raw", str(empty.raw),
             "--workers", "2"],
            empty.environment(),
        )  # fmt: skip
        histories.append(
            {
                "sessions": sessions,
                "full": {"ingest": full_ingest, "build": full_build},
                "one_more_day": {"ingest": day_ingest, "build": day_build},
                "one_day_into_an_empty_lake": {"ingest": empty_ingest},
            }
        )
        print_history(histories[-1])
        shutil.rmtree(lake.root)
        shutil.rmtree(empty.root)
    first, last = histories[0], histories[-1]

    def day_cost(history: dict[str, Any]) -> float:
        day = history["one_more_day"]
        return day["ingest"]["seconds"] + day["build"]["seconds"]

    return {
        "market": {
            "scale": "tiny",
            "seed": MARKET.seed,
            "strike_range": MARKET.strike_range,
            "sessions": MARKET.sessions,
        },
        "histories": histories,
        "full_build_growth": last["full"]["build"]["seconds"] / first["full"]["build"]["seconds"],
        "sessions_growth": last["sessions"] / first["sessions"],
        "one_more_day_growth": day_cost(last) / day_cost(first),
        "landing_growth": last["one_more_day"]["ingest"]["seconds"]
        / last["one_day_into_an_empty_lake"]["ingest"]["seconds"],
        "peak_rss_growth": last["full"]["build"]["peak_rss_mib"]
        / first["full"]["build"]["peak_rss_mib"],
    }


def print_history(history: dict[str, Any]) -> None:
    full, day = history["full"], history["one_more_day"]
    empty = history["one_day_into_an_empty_lake"]
    print(
        "growth  {sessions} sessions: full build {full_build:.0f} s (ingest {full_ingest:.0f} s, "
        "peak {full_peak:,.0f} MiB); one more day: ingest {day_ingest:.1f} s (into an empty "
        "lake {empty_ingest:.1f} s), build {day_build:.1f} s (peak {day_peak:,.0f} MiB)".format(
            sessions=history["sessions"],
            full_build=full["build"]["seconds"],
            full_ingest=full["ingest"]["seconds"],
            full_peak=full["build"]["peak_rss_mib"],
            day_ingest=day["ingest"]["seconds"],
            empty_ingest=empty["ingest"]["seconds"],
            day_build=day["build"]["seconds"],
            day_peak=day["build"]["peak_rss_mib"],
        ),
        flush=True,
    )


def print_growth(measured: dict[str, Any]) -> None:
    print(
        "growth  {first} to {last} sessions ({sessions:.0f}x the days): full build "
        "{full:.2f}x, one more day (ingest and build) {day:.2f}x, build peak memory {peak:.2f}x; "
        "landing a day into the longest history costs {landing:.2f}x landing it alone".format(
            first=measured["histories"][0]["sessions"],
            last=measured["histories"][-1]["sessions"],
            sessions=measured["sessions_growth"],
            full=measured["full_build_growth"],
            day=measured["one_more_day_growth"],
            peak=measured["peak_rss_growth"],
            landing=measured["landing_growth"],
        ),
        flush=True,
    )
