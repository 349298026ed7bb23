"""The `spymaster` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from cluster.ray_runtime import RAY_ADDRESS_ENV_VAR, ClusterError, ray_session, requested_address
from foundation.lake import Lake, LakeError
from foundation.project import PROJECT_ROOT, dbt_command
from ingest import DEFAULT_CHUNK_RECORDS
from spymaster.bench import BENCHMARKS
from synthetic_market.scales import INTRADAY_LISTING_EDGE_POINTS, SCALES, parse_scale

# Each command imports the modules only it needs (the engine, the HUD, live mode, databento):
# all of them at once took 1.2 s before any command started.
# ruff: noqa: PLC0415

if TYPE_CHECKING:
    from live.command import LiveRun


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number of at least 1")
    return number


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD ({error})") from None


def _moment(value: str) -> int:
    from spymaster.book_command import parse_moment

    try:
        return parse_moment(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO-8601 time or integer nanoseconds ({error})"
        ) from None


def _add_lake(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        help="lake folder (default: $SPYMASTER_LAKE, else lake/); several lakes can coexist",
    )


def _add_ray(parser: argparse.ArgumentParser, work: str) -> None:
    parser.add_argument(
        "--ray",
        metavar="ADDRESS|auto",
        help=f"run {work} as Ray tasks: `auto` starts a local Ray with this machine's cores, "
        f"an address joins a cluster (default: ${RAY_ADDRESS_ENV_VAR}, else no Ray)",
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    lake = Lake.resolve(args.lake)
    raw = Path(args.raw).resolve() if args.raw else lake.raw
    ray_address = requested_address(args.ray)
    try:
        with ray_session(ray_address) if ray_address else contextlib.nullcontext():
            return _run_ingest(args, lake, raw, ray_address)
    except ClusterError as error:
        print(f"ingest failed: {error}", file=sys.stderr)
        return 1


def _run_ingest(args: argparse.Namespace, lake: Lake, raw: Path, ray_address: str | None) -> int:
    from tqdm import tqdm

    from ingest.errors import IngestError
    from ingest.landing import ingest
    from ingest.report import format_report

    with tqdm(desc="ingest", unit=" records", unit_scale=True, disable=None) as bar:
        try:
            report = ingest(
                raw,
                lake,
                workers=args.workers,
                chunk_records=args.chunk_records,
                progress=bar.update,
                ray_address=ray_address,
            )
        except (IngestError, LakeError, ClusterError) as error:
            bar.close()
            print(f"ingest failed: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            bar.close()
            print(
                f"ingest failed: {os_error_text(error)} while landing into {lake.root}; "
                "partitions landed before are intact and none of this run's is half there: "
                "free space (or fix the file system) and run ingest again",
                file=sys.stderr,
            )
            return 1
    print(format_report(report, raw, lake))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    lake = Lake.resolve(args.lake)
    try:
        lake.create_layout()
        dropped = drop_interrupted_build_tables(lake)
    except (LakeError, WarehouseHeldError) as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    for name in dropped:
        print(f"build: dropped {name}, left in the warehouse by an interrupted build")
    # dbt's unit tests check the models' SQL on fixed inputs, not the lake's data: dbt
    # recommends them for development and CI (`make test` runs them), not for every build;
    # an --exclude-resource-type given to dbt replaces this default
    excluded = "DBT_EXCLUDE_RESOURCE_TYPES"
    environment = {} if args.unit_tests or excluded in os.environ else {excluded: "unit_test"}
    ray_address = requested_address(args.ray)
    if ray_address is None:
        return run_dbt(lake, ["build", *args.dbt_args], extra_env=environment)
    try:
        with ray_session(ray_address) as joinable:
            # dbt's engine models join the same cluster and run a task per contract-day
            return run_dbt(
                lake,
                ["build", *args.dbt_args],
                extra_env={**environment, RAY_ADDRESS_ENV_VAR: joinable},
            )
    except ClusterError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1


def _cmd_audit(args: argparse.Namespace) -> int:
    lake = Lake.resolve(args.lake)
    if not lake.duckdb_path.exists():
        print(
            f"audit failed: {lake.duckdb_path} does not exist: build the lake first",
            file=sys.stderr,
        )
        return 1
    return run_dbt(lake, ["test", "--exclude-resource-type", "unit_test", *args.dbt_args])


def os_error_text(error: OSError) -> str:
    """An OS fault as one line naming the file when the OS named one."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


class WarehouseHeldError(Exception):
    """Another process holds the warehouse file (a running `spymaster serve` or build)."""


def drop_interrupted_build_tables(lake: Lake) -> list[str]:
    """dbt's staging relations (`<model>__dbt_tmp`, and an incremental Python model's
    `<model>__dbt_tmp<timestamp>` in the default schema) that a killed build left visible to
    analysts, or that builds before the delete+insert macro dropped it left, dropped before the
    next build (which would not). Says first, rather than deep in dbt's log, when another
    process holds the file."""
    if not lake.duckdb_path.exists():
        return []
    try:
        connection = duckdb.connect(str(lake.duckdb_path))
    except duckdb.IOException as error:
        held = re.search(r"held in (.+?)\.\s", str(error))
        raise WarehouseHeldError(
            f"{lake.duckdb_path} is open in another process "
            f"({held.group(1) if held else error}); DuckDB lets one process write it: stop "
            "`spymaster serve` (or that process) first"
        ) from None
    try:
        leftovers = connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_name like '%\\_\\_dbt\\_tmp%' escape '\\' order by all"
        ).fetchall()
        for schema, name, kind in leftovers:
            relation = "view" if kind == "VIEW" else "table"
            connection.execute(f'drop {relation} "{schema}"."{name}"')
    finally:
        connection.close()
    return [f"{schema}.{name}" for schema, name, _ in leftovers]


def run_dbt(lake: Lake, dbt_args: Sequence[str], extra_env: Mapping[str, str] | None = None) -> int:
    """Run dbt on this project against `lake`, in a child process."""
    command = dbt_command(dbt_args)
    environment = {**lake.environment(), **(extra_env or {})}
    return subprocess.run(command, env=environment, cwd=PROJECT_ROOT, check=False).returncode


def _listing_points(text: str) -> float | None:
    if text == "none":
        return None
    try:
        points = float(text)
    except ValueError:
        points = -1.0
    if not points >= 0:
        raise argparse.ArgumentTypeError(f"expected points >= 0 or none, got {text!r}")
    return points


def _cmd_simulate(args: argparse.Namespace) -> int:
    from foundation.dbn_files import RawFileExistsError
    from synthetic_market.simulate import MarketConfig, simulate_market

    config = MarketConfig(
        sessions=args.sessions,
        seed=args.seed,
        scale=args.scale,
        signal_strength=args.signal_strength,
        signature_noise=args.signature_noise,
        start_date=dt.date.fromisoformat(args.start_date),
        strike_range=args.strike_range,
        intraday_listing_edge_points=args.intraday_listings,
    )
    started = time.perf_counter()
    try:
        days = simulate_market(Path(args.out), config, workers=args.workers)
    except RawFileExistsError as error:
        print(f"simulate failed: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    records = 0
    for day in days:
        records += day["futures_records"] + day["options_records"]
        print(
            f"{day['day']}  dominant {day['dominant']}  futures {day['futures_records']:>11,}  "
            f"options {day['options_records']:>11,} ({day['options']} options)  "
            f"approaches {len(day['approaches'])}"
        )
    print(
        f"{len(days)} sessions, {records:,} MBO records in {elapsed:.1f} s "
        f"({records / elapsed:,.0f} records/s) under {Path(args.out).resolve()}"
    )
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from book_engine.errors import EngineError
    from spymaster.book_command import BookCommandError, run_book

    try:
        print(run_book(args.lake, args.symbol, args.dt, args.at, args.depth, args.json))
    except (BookCommandError, EngineError, ValueError) as error:
        print(f"book failed: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_neighbors(args: argparse.Namespace) -> int:
    from spymaster.neighbors_command import NeighborsCommandError, run_neighbors

    try:
        print(run_neighbors(args.lake, args.level, args.at, args.k, args.json))
    except (NeighborsCommandError, ValueError) as error:
        print(f"neighbors failed: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_evidence(args: argparse.Namespace) -> int:
    from spymaster.evidence_command import EvidenceCommandError, run_evidence

    try:
        print(run_evidence(Lake.resolve(args.lake), args.level, args.dir, args.window))
    except (EvidenceCommandError, duckdb.Error) as error:
        print(f"evidence failed: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from hud.serve import ServeError, serve

    try:
        serve(Lake.resolve(args.lake), args.host, args.port)
    except ServeError as error:
        print(f"serve failed: {error}", file=sys.stderr)
        return 1
    return 0


def _announce_live_hud(url: str) -> None:
    print(f"spymaster HUD on {url}  (the live day, drawn as it is computed)", flush=True)


def _serve_until_interrupted(run: LiveRun) -> None:
    from live.command import format_run

    print(format_run(run))
    print("the feed ended; the HUD serves the day until Ctrl-C", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def _serve_after_failure(error: Exception) -> None:
    print(f"live failed: {error}", file=sys.stderr)
    print("the HUD serves the day so far until Ctrl-C", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def _cmd_live(args: argparse.Namespace) -> int:
    from book_engine.errors import EngineError
    from hud.serve import ServeError
    from hud.warehouse import WarehouseUnavailableError
    from ingest.errors import IngestError
    from live.command import LiveHud, format_run, parse_speed, run_databento, run_replay
    from live.models import LiveSqlError
    from live.session import LiveError

    lake = Lake.resolve(args.lake)
    emit = Path(args.emit) if args.emit else None
    hud = (
        LiveHud(
            args.host,
            args.port,
            _announce_live_hud,
            _serve_until_interrupted,
            _serve_after_failure,
        )
        if args.serve
        else None
    )
    try:
        if args.databento:
            run = run_databento(lake, emit, args.dt, args.symbol, args.stop, hud)
        else:
            paths = [Path(path) for path in args.replay]
            speed = parse_speed(args.speed)
            window = (args.start or 0, args.stop)
            run = run_replay(lake, paths, speed, emit, args.dt, args.symbol, *window, hud=hud)
    except (
        LiveError,
        LiveSqlError,
        IngestError,
        EngineError,
        ServeError,
        WarehouseUnavailableError,
        ValueError,
    ) as error:
        print(f"live failed: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"live failed: {os_error_text(error)}", file=sys.stderr)
        return 1
    if hud is None:
        print(format_run(run))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from spymaster.summary import warehouse_summary

    print(warehouse_summary(Lake.resolve(args.lake)))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from spymaster.warehouse_diff import diff_warehouses, format_diff

    try:
        diffs = diff_warehouses(Lake.resolve(args.lake), Lake.resolve(args.other))
    except (FileNotFoundError, duckdb.Error) as error:
        # a missing warehouse, or one another process holds for writing
        print(f"diff failed: {error}", file=sys.stderr)
        return 1
    print(format_diff(diffs))
    return 0 if all(d.same for d in diffs) else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from spymaster.bench.run import run_benchmarks

    return run_benchmarks(
        args.records, Path(args.work_dir) if args.work_dir else None, args.only or BENCHMARKS
    )


def _add_live_parser(commands: argparse._SubParsersAction) -> None:
    live = commands.add_parser(
        "live",
        help="the engine on a record stream: a day's DBN files replayed as a live feed",
        description="Replay a day's raw DBN files (ES.FUT MBO and definitions) as a live "
        "feed, in ts_recv order at --speed times real time, through the warehouse's engine: "
        "each second closes as its records arrive and yields the rows the warehouse builds "
        "for it, then every SQL layer of the warehouse (levels, features, episodes, "
        "triggers, neighbours) on the session so far. --serve draws it in the HUD as it is "
        "computed.",
    )
    _add_lake(live)
    source = live.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--replay",
        nargs="+",
        metavar="PATH",
        help="DBN files or folders (searched for *.dbn, *.dbn.zst) of one day",
    )
    source.add_argument(
        "--databento",
        action="store_true",
        help="subscribe to GLBX.MDP3 ES.FUT and ES.OPT (MBO with snapshot, definitions, "
        "statistics) with databento.Live; the key from DATABENTO_API_KEY",
    )
    live.add_argument("--speed", default="max", help="multiple of real time, or max (default: max)")
    live.add_argument(
        "--emit", metavar="DIR", help="write every emitted row to DIR/<table>.parquet"
    )
    live.add_argument(
        "--start",
        type=_moment,
        help="replay: catch up as fast as possible until this moment (ISO-8601 or ns), then "
        "pace at --speed",
    )
    live.add_argument(
        "--stop",
        type=_moment,
        help="end the feed at this moment (market time; --databento: default the end of the "
        "day, UTC)",
    )
    live.add_argument("--dt", type=_date, help="the session date (default: the MBO files' day)")
    live.add_argument(
        "--symbol",
        help="the contract (default: the warehouse's selected contract of the day; with "
        "--databento, the volume leader of the warehouse's latest session before it)",
    )
    live.add_argument(
        "--serve",
        action="store_true",
        help="serve the HUD of the live day while the feed runs (and after, until Ctrl-C)",
    )
    live.add_argument(
        "--host", default="127.0.0.1", help="--serve: address to listen on (default 127.0.0.1)"
    )
    live.add_argument("--port", type=int, default=8765, help="--serve: port (default 8765)")
    live.set_defaults(handler=_cmd_live)


def _add_diff_parser(commands: argparse._SubParsersAction) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two lakes' warehouses table by table, row for row",
        description="Compare every silver and gold table and view of this lake's warehouse "
        "with another lake's, row for row (every column but build_fingerprint); exit 1 when any "
        "differs. Build the same raw files before and after a change to check it changes no "
        "output.",
    )
    _add_lake(diff)
    diff.add_argument("--other", required=True, help="the other lake folder")
    diff.set_defaults(handler=_cmd_diff)


def _add_bench_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure ingest, the engine, options/GEX, retrieval, the HUD, live and a busy day "
        "raw to gold (throughput, latency, peak memory)",
    )
    bench.add_argument(
        "--records",
        type=int,
        default=5_000_000,
        help="records in the replicated MBO file (default: 5,000,000)",
    )
    bench.add_argument("--work-dir", help="scratch folder (default: a temporary folder)")
    bench.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable; default: all). hud, live and ray build a "
        "realistic two-session market once into target/bench/hud-market; day generates a busy "
        "day once into target/bench/busy-day and times it from raw DBN to every gold table; "
        "growth generates 121 tiny sessions once into target/bench/growth and builds 30, 60 "
        "and 120 of them, then one more day each",
    )
    bench.set_defaults(handler=_cmd_bench)


def _add_simulate_parser(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="write a synthetic GLBX market (ES futures and options) as Databento DBN files",
        description="Write N consecutive trading days of ES.FUT and ES.OPT daily files "
        "(mbo, definition, statistics) with planted level approaches; the ground truth goes "
        "to <out>/ground_truth/ and is never read by the pipeline.",
    )
    simulate.add_argument("--out", required=True, help="folder to write the DBN files into")
    simulate.add_argument("--sessions", type=int, default=12, help="trading days (default 12)")
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument(
        "--scale",
        type=parse_scale,
        default=SCALES["demo"],
        help=f"activity: {', '.join(f'{k} ({v})' for k, v in SCALES.items())} or a factor "
        "(1.0 is a realistic day, over 10M futures and 20M options records; default demo)",
    )
    simulate.add_argument(
        "--signal-strength",
        type=float,
        default=1.0,
        help="size of the planted order-book signatures (0: a control market; default 1)",
    )
    simulate.add_argument(
        "--signature-noise",
        type=float,
        default=0.2,
        help="probability that an approach carries another outcome's signature (default 0.2)",
    )
    simulate.add_argument(
        "--start-date", default="2024-03-04", help="first session (default 2024-03-04)"
    )
    simulate.add_argument(
        "--strike-range",
        type=float,
        default=None,
        help="option strikes listed each side of the first price, points (default 60, 500 at "
        "realistic scale; fewer options build faster)",
    )
    simulate.add_argument(
        "--intraday-listings",
        type=_listing_points,
        default=INTRADAY_LISTING_EDGE_POINTS,
        metavar="POINTS|none",
        help="the exchange lists the next strike beyond the chain of the day's 0DTE expiry "
        "(both rights) each time the future comes within POINTS of the chain's outermost "
        "strike (default %(default)g); none: no strikes listed during the session",
    )
    simulate.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    simulate.set_defaults(handler=_cmd_simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spymaster",
        description="Market-microstructure warehouse for CME E-mini S&P 500 futures (ES).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser(
        "ingest",
        help="land a folder of Databento DBN files as bronze Parquet",
        description="Find every .dbn / .dbn.zst file under --raw, recognise it by its DBN "
        "metadata and land it as hive-partitioned bronze Parquet. Re-runs skip unchanged "
        "files; a changed file rebuilds exactly its partitions.",
    )
    ingest.add_argument("--raw", help="folder of DBN files (default: <lake>/raw)")
    _add_lake(ingest)
    ingest.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="files decoded in parallel (default: min(4, cores))",
    )
    ingest.add_argument(
        "--chunk-records",
        type=int,
        default=DEFAULT_CHUNK_RECORDS,
        help="records decoded at a time per file; bounds memory (default: %(default)s)",
    )
    _add_ray(ingest, "each raw file")
    ingest.set_defaults(handler=_cmd_ingest)

    build = commands.add_parser(
        "build",
        help="run `dbt build` on the lake (extra arguments go to dbt)",
        description="Run dbt build for this project against the lake, e.g. "
        "`spymaster build --select tag:bronze`.",
    )
    _add_lake(build)
    _add_ray(build, "each contract-day of the engine models")
    build.add_argument(
        "--unit-tests",
        action="store_true",
        help="also run dbt's unit tests (the models' SQL on fixed inputs; `make test` runs "
        "them); the lake's data tests always run",
    )
    build.set_defaults(handler=_cmd_build)

    audit = commands.add_parser(
        "audit",
        help="run every data test on every date of the lake (extra arguments go to dbt)",
        description="Run dbt's data tests on the whole warehouse: a build tests only the dates "
        "it computed of the day-by-day models, this checks every date, e.g. after changing a "
        "test.",
    )
    _add_lake(audit)
    audit.set_defaults(handler=_cmd_audit)

    _add_simulate_parser(commands)

    book = commands.add_parser(
        "book",
        help="the reconstructed order book of one contract-day at a moment (from bronze)",
        description="Replay a bronze futures_mbo partition with the book engine and print the "
        "book after the last record with F_LAST whose ts_recv < --at (default: the end).",
    )
    _add_lake(book)
    book.add_argument("--symbol", required=True, help="contract, e.g. ESM4")
    book.add_argument(
        "--dt", required=True, type=_date, help="partition date (UTC day of the file), YYYY-MM-DD"
    )
    book.add_argument(
        "--at", type=_moment, help="ISO-8601 time (UTC unless an offset is given) or integer ns"
    )
    book.add_argument(
        "--depth", type=_positive_int, default=10, help="price levels per side (default 10)"
    )
    book.add_argument("--json", action="store_true", help="print one JSON object")
    book.set_defaults(handler=_cmd_book)

    neighbors = commands.add_parser(
        "neighbors",
        help="the most similar historical setups to a level's trigger at a moment",
        description="Take the level's latest trigger at or before --at (same UTC day), search "
        "its level and direction's FAISS index (<lake>/indexes) for the most similar triggers "
        "of earlier sessions, and print them with their similarity and outcome.",
    )
    _add_lake(neighbors)
    neighbors.add_argument("--level", required=True, help="level id, e.g. PM_HIGH")
    neighbors.add_argument(
        "--at",
        required=True,
        type=_moment,
        help="ISO-8601 time (UTC unless an offset is given) or integer ns",
    )
    neighbors.add_argument("--k", type=_positive_int, default=10, help="neighbours (default 10)")
    neighbors.add_argument("--json", action="store_true", help="print one JSON object")
    neighbors.set_defaults(handler=_cmd_neighbors)

    evidence = commands.add_parser(
        "evidence",
        help="how often the four conditions held before a level's triggers, and what followed",
        description="Print gold.condition_outcomes for a level and direction: each condition "
        "(C1/C2: the side beyond the level moves away / is pulled faster than added; C3/C4: "
        "the side behind) and each pattern of them, with n, sessions, the BREAK share and its "
        "session-clustered interval, the REJECT share, the lift over the walk-forward base "
        "rate and the Holm-adjusted permutation p-value, at real levels and at placebo levels.",
    )
    _add_lake(evidence)
    evidence.add_argument(
        "--level", default="ALL", help="level id, e.g. PM_HIGH (default ALL: pooled)"
    )
    evidence.add_argument(
        "--dir",
        default="ALL",
        choices=("UP", "DOWN", "ALL"),
        help="approach direction (default ALL)",
    )
    evidence.add_argument(
        "--window",
        type=_positive_int,
        help="seconds before the trigger (a condition window; default the longest)",
    )
    evidence.set_defaults(handler=_cmd_evidence)

    serve_parser = commands.add_parser(
        "serve",
        help="the replay HUD: a web page over the warehouse (read-only)",
        description="Serve the replay HUD over the lake's warehouse, read-only: the liquidity "
        "heatmap, physics layers, levels and triggers, gamma exposure by strike and the most "
        "similar earlier setups, second by second. Open the printed URL in a browser.",
    )
    _add_lake(serve_parser)
    serve_parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    serve_parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve_parser.set_defaults(handler=_cmd_serve)

    _add_live_parser(commands)

    summary = commands.add_parser("summary", help="tables, row counts and results of a lake")
    _add_lake(summary)
    summary.set_defaults(handler=_cmd_summary)

    _add_diff_parser(commands)
    _add_bench_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("build", "audit"):
        args.dbt_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
