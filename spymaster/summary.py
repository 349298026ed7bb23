"""`spymaster summary`: what the warehouse holds, layer by layer."""

from __future__ import annotations

import duckdb

from foundation.lake import Lake
from foundation.project import project_vars

# the model names and pooled metric, not walk_forward's: LightGBM and scikit-learn take 3 s to
# import
from model_comparison.metrics import MODELS, pooled_within_session_auc
from spymaster.evidence_command import POOLED, condition_table

PRE_MARKET_LEVELS = ("PM_HIGH", "PM_LOW")

LAYERS = ("bronze", "silver", "gold")


def warehouse_summary(lake: Lake) -> str:
    if not lake.duckdb_path.exists():
        raise FileNotFoundError(f"{lake.duckdb_path}: no warehouse yet (run `spymaster build`)")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return "\n".join(
            [
                *_tables(connection),
                "",
                *_selection(connection),
                "",
                *_surfaces(connection),
                "",
                *_gamma_exposure(connection),
                "",
                *_triggers(connection),
                "",
                *_retrieval(connection),
                "",
                *_model_comparison(connection),
                "",
                *condition_table(connection, POOLED, POOLED, None),
                "  (per level and direction: `spymaster evidence --level PM_HIGH --dir UP`)",
                "",
                *_hud(lake),
            ]
        )
    finally:
        connection.close()


def _tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    tables = connection.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema in ('bronze', 'silver', 'gold') order by table_schema, table_name"
    ).fetchall()
    lines = ["tables (rows):"]
    for schema, name, kind in sorted(tables, key=lambda row: (LAYERS.index(row[0]), row[1])):
        (rows,) = connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
        label = "view" if kind == "VIEW" else "table"
        lines.append(f"  {schema}.{name:<32} {rows:>14,}  {label}")
    return lines


def _selection(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "select dt, coalesce(selected_symbol, '-'), selected_volume, dominance, "
        "coalesce(exclusion_reason, 'included') from silver.contract_day_selection order by dt"
    ).fetchall()
    lines = ["contract-day selection (dt, contract, window volume, dominance, status):"]
    for day, symbol, volume, dominance, status in rows:
        share = f"{dominance:.2f}" if dominance is not None else "   -"
        lines.append(f"  {day}  {symbol:<6} {volume:>10,}  {share}  {status}")
    return lines


def _surfaces(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        with book as (
            select dt, symbol, count(*) as seconds, avg(book_valid::int) as valid_share,
                avg((best_ask_price - best_bid_price) / {tick})
                    filter (where book_valid) as mean_spread_ticks
            from silver.book_snapshot_1s group by dt, symbol
        ),
        flow as (
            select dt, count(*) as depth_rows, sum(add_qty) as added, sum(pull_qty) as pulled,
                sum(fill_qty) as filled
            from silver.depth_and_flow_1s group by dt
        )
        select book.dt, book.symbol, book.seconds, book.valid_share, book.mean_spread_ticks,
            coalesce(flow.depth_rows, 0), flow.added, flow.pulled, flow.filled
        from book left join flow using (dt) order by book.dt
        """.format(tick=float(project_vars()["futures_tick_size"]))
    ).fetchall()
    lines = [
        "surfaces per included day (seconds, valid, mean spread in ticks, depth rows, "
        "added / pulled / filled contracts):"
    ]
    for day, symbol, seconds, valid, spread, depth_rows, added, pulled, filled in rows:
        lines.append(
            f"  {day}  {symbol:<6} {seconds:>7,}  {valid:5.1%}  {spread or 0:5.2f}  "
            f"{depth_rows:>11,}  {added or 0:>9,} / {pulled or 0:>9,} / {filled or 0:>9,}"
        )
    return lines


def _gamma_exposure(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        with quotes as (
            select dt, count(distinct instrument_id) as options,
                avg((iv_status = 'ok')::int) as with_volatility
            from silver.options_quotes_1s group by dt
        ),
        surface as (
            select dt, count(distinct window_start) as seconds,
                count(distinct window_start) filter (where zero_gamma_level is not null)
                    as with_zero_gamma,
                median(zero_gamma_level - spot_price) as zero_gamma_from_spot,
                mode(call_wall) as call_wall, mode(put_wall) as put_wall
            from silver.gex_surface_1s group by dt
        )
        select quotes.dt, quotes.options, quotes.with_volatility, surface.seconds,
            surface.with_zero_gamma, surface.zero_gamma_from_spot, surface.call_wall,
            surface.put_wall
        from quotes left join surface using (dt) order by quotes.dt
        """
    ).fetchall()
    lines = [
        "gamma exposure per included day (options, option-seconds with a volatility, seconds, "
        "with a zero-gamma level, median zero gamma - spot, usual call wall / put wall):"
    ]
    for day, options, with_volatility, seconds, with_zero, from_spot, call, put in rows:
        offset = f"{from_spot:+7.1f}" if from_spot is not None else "      -"
        lines.append(
            f"  {day}  {options:>5,}  {with_volatility:5.1%}  {seconds or 0:>7,}  "
            f"{with_zero or 0:>7,}  {offset}  {call or 0:7.0f} / {put or 0:7.0f}"
        )
    return lines


def _triggers(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        select vectors.level_id, vectors.approach_dir, count(*) as triggers,
            count(distinct vectors.dt) as sessions,
            count(*) filter (where outcomes.outcome = 'BREAK') as breaks,
            count(*) filter (where outcomes.outcome = 'REJECT') as rejects,
            count(*) filter (where outcomes.outcome = 'CHOP') as chops,
            count(*) filter (where outcomes.outcome = 'WHIPSAW') as whipsaws,
            median(outcomes.seconds_to_first_hit) as median_seconds_to_hit
        from gold.trigger_vectors as vectors
        inner join gold.trigger_outcomes as outcomes using (trigger_id)
        group by all order by all
        """
    ).fetchall()
    (dimensions,) = connection.execute(
        "select coalesce(max(len(feature_vector)), 0) from gold.trigger_vectors"
    ).fetchone()
    lines = [
        f"triggers and outcomes at the primary horizon per level and direction "
        f"({dimensions} features per vector; sessions, BREAK / REJECT / CHOP / WHIPSAW, "
        f"median seconds to the first barrier):"
    ]
    for level, direction, triggers, sessions, breaks, rejects, chops, whipsaws, to_hit in rows:
        seconds = f"{to_hit:6.0f}" if to_hit is not None else "     -"
        lines.append(
            f"  {level:<8} {direction:<4} {triggers:>5,} in {sessions:>3}  "
            f"{breaks:>4} / {rejects:>4} / {chops:>4} / {whipsaws:>3}  {seconds}"
        )
    return lines


def _retrieval(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        select level_id, approach_dir, n, sessions, base_rate, auc, auc_ci_low, auc_ci_high,
            brier, brier_base_rate, brier_time_of_day, log_loss, log_loss_base_rate,
            top_decile_lift
        from gold.retrieval_evaluation order by level_id, approach_dir
        """
    ).fetchall()
    lines = [
        "walk-forward retrieval of P(BREAK) per level and direction (triggers, sessions, base "
        "rate, AUC [95% session-bootstrap interval], Brier: model / base rate / time of day, "
        "log loss: model / base rate, top-decile lift):"
    ]

    def number(value: float | None, digits: int = 2) -> str:
        return "  -" if value is None else f"{value:.{digits}f}"

    for (level, direction, n, sessions, base, auc, low, high, brier, brier_base, brier_tod,
         loss, loss_base, lift) in rows:  # fmt: skip
        lines.append(
            f"  {level:<8} {direction:<4} {n:>5,} {sessions:>3}  {number(base)}  "
            f"AUC {number(auc)} [{number(low)}, {number(high)}]  "
            f"Brier {number(brier, 3)} / {number(brier_base, 3)} / {number(brier_tod, 3)}  "
            f"log loss {number(loss, 3)} / {number(loss_base, 3)}  lift {number(lift)}"
        )
    return lines


def _model_comparison(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        select level_id, approach_dir, model, n, auc, within_session_auc,
            expected_calibration_error, auc_over_null_ci_low
        from gold.model_comparison
        """
    ).fetchall()
    table: dict[tuple[str, str], dict[str, tuple]] = {}
    for level, direction, model, *metrics in rows:
        table.setdefault((level, direction), {})[model] = tuple(metrics)

    def cell(metrics: tuple | None) -> str:
        if metrics is None:
            return f"{'-':<22}"
        _, auc, within, ece, over_null_low = metrics
        text = "/".join("  -" if v is None else f"{v:.2f}" for v in (auc, within, ece))
        beats = "*" if over_null_low is not None and over_null_low > 0 else " "
        return f"{text + beats:<22}"

    lines = [
        "models beside retrieval on the same walk-forward folds and triggers "
        "(AUC / within-session AUC / calibration error; * its AUC beats the null's, 95% "
        "paired session bootstrap):",
        (f"  {'level':<8} {'dir':<4} {'n':>5}  " + "".join(f"{m:<22}" for m in MODELS)).rstrip(),
    ]
    for (level, direction), models in sorted(table.items()):
        n = next(iter(models.values()))[0]
        lines.append(
            f"  {level:<8} {direction:<4} {n:>5,}  "
            + "".join(cell(models.get(m)) for m in MODELS).rstrip()
        )
    pooled = pooled_within_session_auc(connection, PRE_MARKET_LEVELS)
    if pooled:
        lines.append(
            "  within-session AUC pooled over PM_HIGH and PM_LOW: "
            + ", ".join(f"{model} {value:.3f}" for model, value in pooled.items())
        )
    families = connection.execute(
        """
        select feature_group, avg(gain_share) as share
        from gold.tree_gain_by_feature_group
        where grouped_by = 'feature_family' and fits > 0
        group by feature_group order by share desc
        """
    ).fetchall()
    if families:
        lines.append(
            "  what the trees split on (share of split gain, mean over levels and directions): "
            + ", ".join(f"{family} {share:.0%}" for family, share in families)
        )
    return lines


def _hud(lake: Lake) -> list[str]:
    return [
        "see it, second by second, in the replay HUD:",
        f"  uv run spymaster serve --lake {lake.root}",
        "  then open http://127.0.0.1:8765/ in a browser (Ctrl-C stops the server);",
        "  press e there for the evidence: the typical book before a BREAK and a REJECT",
    ]
