"""Ingest, the engine, options and retrieval: throughput and peak memory in child processes;
and the runner of every benchmark.

Ingest: the largest real sample MBO file (ESH4 2023-12-25, 68,792 records) is replicated to at
least the requested record count, written as one zstd DBN file, and landed by a fresh process
whose peak resident memory is read back from the kernel.

Engine: a realistic generated day (`spymaster simulate --scale realistic`, over 10 million
futures records) is decoded with databento and replayed by the book engine in a fresh process:
the decode rate, the engine's rate alone (book only, then with the 1-second surfaces) and the
process's peak memory.

Options: the same day's ES.OPT files (over 20 million MBO records, about 1,200 options) are
landed to bronze, then a fresh process runs what engine_options_quotes_1s and
engine_zero_gamma_1s run: bronze to columns, the engine over every option with implied
volatility, gamma and gamma exposure per option and second, then the zero-gamma profile of
every second; the rates of each step and the process's peak memory.

Day: a busy generated day from raw DBN to every gold table (see spymaster.bench.day).
Growth: build time and memory against the history, and the cost of one more day (see
spymaster.bench.growth).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import databento as db
import numpy as np
import zstandard

from foundation.project import PROJECT_ROOT
from spymaster.bench import BENCHMARKS
from spymaster.bench.day import bench_day, print_day
from spymaster.bench.growth import bench_growth, print_growth
from spymaster.bench.record import write_results
from spymaster.bench.tables import update_performance_doc
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market

SAMPLE_DIR = PROJECT_ROOT.parent / "shared" / "data" / "databento"
SAMPLE_MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"

_INGEST_CHILD = """
import json, sys, time
from pathlib import Path
from ingest.landing import ingest
from foundation.lake import Lake
started = time.perf_counter()
report = ingest(Path(sys.argv[1]), Lake(Path(sys.argv[2])), workers=1)
print(json.dumps({"seconds": time.perf_counter() - started, "records": report.records_landed}))
"""


def replicate_sample(records: int, out: Path) -> tuple[int, int]:
    """Write the sample file's records repeated to >= `records`; returns (records, bytes)."""
    source = SAMPLE_DIR / SAMPLE_MBO
    if not source.exists():
        raise SystemExit(f"bench needs the real sample file {source}")
    store = db.DBNStore.from_file(source)
    body = store.to_ndarray()
    copies = -(-records // len(body))
    replicated = np.tile(body, copies)
    header_length = 8 + int.from_bytes(store.reader.read(8)[4:8], "little")
    header = store.reader.read(header_length)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        compressor = zstandard.ZstdCompressor(level=3, threads=-1)
        with compressor.stream_writer(handle) as writer:
            writer.write(header)
            writer.write(replicated.tobytes())
    return len(replicated), out.stat().st_size


def bench_ingest(records: int, work_dir: Path) -> dict[str, float]:
    raw = work_dir / "raw"
    total, size = replicate_sample(records, raw / f"replicated-{SAMPLE_MBO}")
    lake = work_dir / "lake"
    started = time.perf_counter()
    measured = _run_child(_INGEST_CHILD, raw, lake)
    wall = time.perf_counter() - started
    assert measured["records"] == total, "ingest landed a different record count"
    return {
        "records": total,
        "file_mib": size / 2**20,
        "ingest_seconds": measured["seconds"],
        "process_seconds": wall,
        "records_per_second": total / measured["seconds"],
        "peak_rss_mib": measured["peak_rss_mib"],
    }


_ENGINE_CHILD = """
import datetime as dt, json, sys, time
from pathlib import Path
import databento as db
from book_engine.replay import MboColumns, WindowConfig, book_at, replay_windows
from book_engine.surfaces import SurfaceSettings
path, instrument = Path(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
records = db.DBNStore.from_file(path).to_ndarray()
decode = time.perf_counter() - started
front = MboColumns.from_dbn(records[records["instrument_id"] == instrument])
ticks = {instrument: 250_000_000}
book_at(front, ticks)  # warm up: compile or load the cached kernel
def best(run, repeats=3):
    # the best of a few runs: this shared machine's speed varies from minute to minute
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result
replay_only, _ = best(lambda: book_at(front, ticks))
day = dt.date.fromisoformat(sys.argv[3])
settings = SurfaceSettings(
    "America/New_York", 200, 500, (dt.time(9), dt.time(13)), (dt.time(17), dt.time(18))
)
config = settings.window_config(day)
surfaces, depth_rows = best(
    lambda: sum(len(c.depth_rows) for c in replay_windows(front, ticks, config))
)
print(json.dumps({"file_records": len(records), "records": len(front), "decode": decode,
                  "replay": replay_only, "surfaces": surfaces, "depth_rows": depth_rows}))
"""


def bench_engine(work_dir: Path) -> dict[str, float]:
    raw = work_dir / "realistic"
    config = MarketConfig(sessions=1, seed=1, scale=SCALES["realistic"])
    if not (raw / "ES.FUT" / "mbo").exists():
        simulate_market(raw, config)
    (path,) = sorted((raw / "ES.FUT" / "mbo").glob("*.dbn.zst"))
    measured = _run_child(_ENGINE_CHILD, path, 4001, config.start_date.isoformat())
    return {
        **measured,
        "decode_rate": measured["file_records"] / measured["decode"],
        "replay_rate": measured["records"] / measured["replay"],
        "replay_to_decode": (measured["records"] / measured["replay"])
        / (measured["file_records"] / measured["decode"]),
        "surfaces_rate": measured["records"] / measured["surfaces"],
    }


_OPTIONS_CHILD = """
import datetime as dt, json, resource, sys, time
from pathlib import Path
import duckdb
import numpy as np
import pyarrow as pa
from book_engine.replay import MboColumns
from gex.options_surface import (
    ProfileSettings, SpotSeries, profile_inputs, quote_batches, zero_gamma_batch,
)
from book_engine.bronze_input import bronze_mbo
from gex.chain import options_chain
from gex.options_surface import OptionsSettings
from foundation.exchange_time import utc_ns
from foundation.lake import Lake
from foundation.project import project_vars
lake, spot_path, day = Path(sys.argv[1]), Path(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
zone = "America/New_York"
spot_file = np.load(spot_path)
spot = SpotSeries(spot_file["seconds"], spot_file["spot"])
connection = duckdb.connect()
def bronze(table):
    return connection.sql(f"select * from {Lake(lake).read_bronze_sql(table)}")
settings = OptionsSettings.from_config(project_vars())  # the warehouse's own settings
profile = ProfileSettings(100.0, 5.0, 0.0, 1.0, -1.0)
underlyings = bronze("options_mbo").project("symbol").distinct().order("symbol")
symbols = [s for (s,) in underlyings.fetchall()]
measured = dict(records=0, options=0, load=0.0, quotes=0.0, quotes_cpu=0.0, quote_rows=0,
                iv_ok=0, zero_gamma=0.0, seconds=0, levels=0, partitions=len(symbols))
def cpu_seconds():  # every thread's: the replay's, the pricing's two
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
for symbol in symbols:  # one partition at a time, as engine_options_quotes_1s runs them
    started = time.perf_counter()
    chain = options_chain(bronze("options_definitions"), bronze("options_statistics"), symbol,
                          day, utc_ns(day, dt.time(9, 30), zone), 0.05)
    options = MboColumns.from_arrow(bronze_mbo(str(lake), "options_mbo", symbol, day))
    measured["load"] += time.perf_counter() - started
    measured["records"] += len(options.ts_recv)
    measured["options"] += len(np.unique(options.instrument_id))
    started, cpu_started = time.perf_counter(), cpu_seconds()
    kept = []  # what engine_zero_gamma_1s reads back: rows with a volatility and open interest
    for batch in quote_batches(symbol, day, [options], chain, spot, settings, "bench"):
        measured["quote_rows"] += batch.num_rows
        measured["iv_ok"] += batch.num_rows - batch["implied_volatility"].null_count
        kept.append(profile_inputs(pa.Table.from_batches([batch])))
    measured["quotes"] += time.perf_counter() - started
    measured["quotes_cpu"] += cpu_seconds() - cpu_started
    del options
    profile_input = pa.concat_tables(kept)
    del kept
    zero_gamma_batch(symbol, day, profile_input.slice(0, 1000), profile, "warm-up")
    started = time.perf_counter()
    levels = zero_gamma_batch(symbol, day, profile_input, profile, "bench")
    measured["zero_gamma"] += time.perf_counter() - started
    measured["seconds"] += levels.num_rows
    measured["levels"] += levels.num_rows - levels["zero_gamma_level"].null_count
print(json.dumps(measured))
"""


_SPOT_CHILD = """
import dataclasses, datetime as dt, sys
import databento as db
import numpy as np
from book_engine.replay import MboColumns, replay_windows
from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from gex.options_surface import OptionsSettings
from foundation.project import project_vars
path, instrument, out = sys.argv[1], int(sys.argv[2]), sys.argv[4]
day = dt.date.fromisoformat(sys.argv[3])
records = db.DBNStore.from_file(path).to_ndarray()
front = MboColumns.from_dbn(records[records["instrument_id"] == instrument])
del records
# the future's spot over the options' seconds (whole book rows: the spot is one of them)
window = dataclasses.replace(
    OptionsSettings.from_config(project_vars()).window_config(day), with_spot=True, quote_rows=False
)
chunks = replay_windows(front, {instrument: 250_000_000}, window)
book = np.concatenate([chunk.book_rows for chunk in chunks])
valid = (book["book_valid"] == 1) & (book["spot_price"] != UNDEF_PRICE)
np.savez(out, seconds=book["window_start"][valid], spot=book["spot_price"][valid] / PRICE_SCALE)
"""


def bench_options(work_dir: Path) -> dict[str, float]:
    raw = work_dir / "realistic"
    config = MarketConfig(sessions=1, seed=1, scale=SCALES["realistic"])
    if not (raw / "ES.FUT" / "mbo").exists():
        simulate_market(raw, config)
    options_raw = work_dir / "options-raw"
    options_raw.mkdir(exist_ok=True)
    if not (options_raw / "ES.OPT").exists():
        (options_raw / "ES.OPT").symlink_to(raw / "ES.OPT")
    lake = work_dir / "options-lake"
    started = time.perf_counter()
    _run_child(_INGEST_CHILD, options_raw, lake)
    landing = time.perf_counter() - started
    (futures_path,) = sorted((raw / "ES.FUT" / "mbo").glob("*.dbn.zst"))
    # the future's spot per second, what book_snapshot_1s gives the options models
    spot = work_dir / "spot.npz"
    _run_child(_SPOT_CHILD, futures_path, 4001, config.start_date.isoformat(), spot)
    measured = _run_child(_OPTIONS_CHILD, lake, spot, config.start_date.isoformat())
    engine_and_gex = measured["quotes"] + measured["zero_gamma"]
    return {
        **measured,
        "landing": landing,
        "quotes_rate": measured["records"] / measured["quotes"],
        "quotes_cores": measured["quotes_cpu"] / measured["quotes"],
        "rows_rate": measured["quote_rows"] / measured["quotes"],
        "zero_gamma_rate": measured["seconds"] / measured["zero_gamma"],
        "engine_and_gex": engine_and_gex,
        "total_rate": measured["records"] / engine_and_gex,
    }


_PEAK_MEMORY = """
import json as _json
from pathlib import Path as _Path
_status = _Path("/proc/self/status").read_text().splitlines()
_peak = next(int(line.split()[1]) for line in _status if line.startswith("VmHWM:"))
print(_json.dumps({"peak_rss_mib": _peak / 1024}))
"""


_RETRIEVAL_CHILD = """
import json, sys, time
import numpy as np
from retrieval.index_store import SetupIndex, search_method
from retrieval.neighbours import TriggerSet, exact_inner_product_index
vectors, dimensions, queries, k = map(int, sys.argv[1:5])
rng = np.random.default_rng(0)
# clustered like trigger vectors: a few hundred setups, each trigger with its own noise; a
# live query is a new trigger of one of them
centers = rng.normal(0, 1, (300, dimensions))
def draw(count):
    return centers[rng.integers(0, 300, count)] + rng.normal(0, 0.7, (count, dimensions))
data = draw(vectors)
sessions = np.sort(rng.integers(0, 1000, vectors)).astype("datetime64[D]")
triggers = TriggerSet(np.array([str(i) for i in range(vectors)]), sessions, data,
                      rng.choice(np.array(["BREAK", "REJECT", "CHOP"]), vectors))
started = time.perf_counter()
index = SetupIndex.build("PM_HIGH", "UP", triggers, [f"f{i}" for i in range(dimensions)],
                         np.zeros(vectors))
build = time.perf_counter() - started
asked = draw(queries)
latencies, found = [], []
for query in asked:
    started = time.perf_counter()
    found.append(index.search(query, k)[1][0])
    latencies.append(time.perf_counter() - started)
latencies = np.array(latencies) * 1000
exact = exact_inner_product_index(index.metric.transform(data))
truth = exact.search(index.metric.transform(asked), k)[1]
recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)])
print(json.dumps({"vectors": vectors, "dimensions": dimensions, "queries": queries, "k": k,
                  "search": search_method(index.index), "build": build,
                  "p50_ms": float(np.percentile(latencies, 50)),
                  "p99_ms": float(np.percentile(latencies, 99)), "recall": float(recall)}))
"""


def bench_retrieval() -> dict[str, Any]:
    """One level and direction's live index of 120,000 triggers, one live query at a time:
    fitting the metric (scaling and weights) and building the index, then searching; recall
    of the 15 nearest against an exact scan. At the default retrieval features (96) and at
    every block of trigger_vectors (320)."""
    return {
        f"{dimensions}d": _run_child(_RETRIEVAL_CHILD, 120_000, dimensions, 1000, 15)
        for dimensions in (96, 320)
    }


def _run_child(code: str, *arguments: object) -> dict[str, Any]:
    """Run a bench step in a fresh process. Its last JSON line and the process's own peak
    resident memory (VmHWM: a new address space per exec, unlike getrusage's maxrss, which a
    child inherits from a large parent) come back as one dict."""
    result = subprocess.run(
        [sys.executable, "-c", code + _PEAK_MEMORY, *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench step failed:\n{result.stderr[-4000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    measured: dict[str, Any] = {}
    for line in lines[-2:]:
        measured.update(json.loads(line))
    return measured


# The HUD's realistic market is generated and built once and kept here (target/ is not versioned).
HUD_MARKET = PROJECT_ROOT / "target" / "bench" / "hud-market"


def _print_ingest(result: dict[str, Any]) -> None:
    print(
        "ingest  {records:,} MBO records ({file_mib:.1f} MiB zstd DBN, one file, one worker): "
        "{ingest_seconds:.2f} s, {records_per_second:,.0f} records/s, "
        "peak RSS {peak_rss_mib:,.0f} MiB".format(**result),
        flush=True,
    )


def _print_engine(engine: dict[str, Any]) -> None:
    print(
        "decode  {file_records:,} records of a realistic generated ES.FUT day with databento "
        "to_ndarray: {decode:.2f} s, {decode_rate:,.0f} records/s".format(**engine)
    )
    print(
        "engine  {records:,} records of the front contract, one core, best of 3: book replay "
        "{replay:.2f} s ({replay_rate:,.0f} msgs/s, {replay_to_decode:.2f}x the decode rate); "
        "with 1-second surfaces "
        "(86,400 book rows, {depth_rows:,} depth rows) {surfaces:.2f} s ({surfaces_rate:,.0f} "
        "msgs/s); peak RSS {peak_rss_mib:,.0f} MiB".format(**engine),
        flush=True,
    )


def _print_options(options: dict[str, Any]) -> None:
    print(
        "options {records:,} ES.OPT MBO records of the same day ({options:,} options, "
        "{partitions} underlying(s); landed "
        "to bronze in {landing:.1f} s, read back in {load:.1f} s), the replay computed ahead "
        "on a thread of its own, the pricing on two: engine + implied "
        "volatility + gamma exposure {quotes:.1f} s ({quotes_rate:,.0f} records/s; "
        "{quotes_cpu:.1f} s of CPU, {quotes_cores:.2f} cores busy; "
        "{quote_rows:,} option-seconds, {rows_rate:,.0f} rows/s, {iv_ok:,} with a volatility); "
        "zero-gamma profile of {seconds:,} seconds {zero_gamma:.1f} s ({zero_gamma_rate:,.0f} "
        "seconds/s, {levels:,} with a level); engine + GEX {engine_and_gex:.1f} s "
        "({total_rate:,.0f} records/s); peak RSS {peak_rss_mib:,.0f} MiB".format(**options),
        flush=True,
    )


def _print_retrieval(retrieval: dict[str, Any]) -> None:
    for measured in retrieval.values():
        print(
            "retrieval  live index of {vectors:,} trigger vectors x {dimensions} features, "
            "{search} (metric fit + build {build:.2f} s): {queries:,} single live queries of "
            "the {k} nearest, p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms, recall {recall:.4f} "
            "of an exact scan's; peak RSS {peak_rss_mib:,.0f} MiB".format(**measured),
            flush=True,
        )


def _print_hud(hud: dict[str, Any]) -> None:
    print(
        "hud  realistic market ({lake}), headless Chromium 1600x900 against spymaster serve: "
        "first full picture of a session p50 {open_p50_ms:,.0f} ms (max {open_max_ms:,.0f}) "
        "over 5 opens; seek to a random second, drawn: p50 {seek_p50_ms:,.0f} ms, "
        "p95 {seek_p95_ms:,.0f} ms over 50; replay at 60x for 60 s: {replay_fps:.1f} frames "
        "drawn/s (slowest second {replay_fps_min:.1f}, {replay_seconds_under_30} of 59 under 30), "
        "clock {replay_clock_rate:.1f} replay "
        "s/s, {replay_behind} seconds found missing; 20 WebSocket clients at 10x for 60 s, "
        "started at once: first frame after p50 {client_start_p50_ms:,.0f} ms (max "
        "{client_start_max_ms:,.0f}), then {client_frames:,} frames, {client_late_frames} late, "
        "the latest {client_latest_ms:+,.0f} ms against its client's clock; server peak RSS "
        "{server_peak_rss_mib:,.0f} MiB".format(**hud),
        flush=True,
    )


def run_benchmarks(records: int, work_dir: Path | None, only: Sequence[str] = BENCHMARKS) -> int:
    """Each benchmark prints its line as soon as it is measured."""
    # the HUD's benchmark drives a browser through Playwright, a development dependency
    from spymaster.bench.hud import bench_hud, market_lake  # noqa: PLC0415
    from spymaster.bench.live import bench_live, print_live  # noqa: PLC0415
    from spymaster.bench.ray import bench_ray, print_ray  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="spymaster-bench-") as scratch:
        folder = work_dir or Path(scratch)
        steps = {
            "ingest": (lambda: bench_ingest(records, folder), _print_ingest),
            "engine": (lambda: bench_engine(folder), _print_engine),
            "options": (lambda: bench_options(folder), _print_options),
            "retrieval": (bench_retrieval, _print_retrieval),
            "hud": (lambda: bench_hud(HUD_MARKET), _print_hud),
            "live": (lambda: bench_live(HUD_MARKET), print_live),
            "ray": (lambda: bench_ray(market_lake(HUD_MARKET)), print_ray),
            "day": (bench_day, print_day),
            "growth": (bench_growth, print_growth),
        }
        for name in BENCHMARKS:
            if name in only:
                measure, report = steps[name]
                results = measure()
                report(results)
                write_results(name, results)
                update_performance_doc()
    return 0
