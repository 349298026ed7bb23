"""`spymaster evidence`: how often each of the four conditions, and each pattern of them, held
before the triggers of a level and direction, and what followed, at real levels against
placebo levels (gold.condition_outcomes)."""

from __future__ import annotations

import duckdb

from foundation.lake import Lake

POOLED = "ALL"
KINDS = ("real", "placebo")


class EvidenceCommandError(ValueError):
    """A question the warehouse cannot answer (no table, no such level or window)."""


def run_evidence(lake: Lake, level: str, direction: str, window: int | None) -> str:
    if not lake.duckdb_path.exists():
        raise EvidenceCommandError(f"no warehouse at {lake.duckdb_path}: run `spymaster build`")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return "\n".join(condition_table(connection, level, direction, window))
    finally:
        connection.close()


def condition_table(
    connection: duckdb.DuckDBPyConnection, level: str, direction: str, window: int | None
) -> list[str]:
    try:
        windows = [w for (w,) in connection.execute(
            "select distinct window_seconds from gold.condition_outcomes order by 1"
        ).fetchall()]  # fmt: skip
    except duckdb.CatalogException:
        raise EvidenceCommandError(
            "the warehouse has no gold.condition_outcomes: run `spymaster build`"
        ) from None
    if not windows:
        raise EvidenceCommandError("gold.condition_outcomes is empty: no labelled triggers")
    window = window if window is not None else max(windows)
    if window not in windows:
        raise EvidenceCommandError(
            f"--window {window}: the warehouse has condition windows of {windows} seconds"
        )
    rows = connection.execute(
        """
        select level_kind, grouping, member, held, n, sessions, break_share, reject_share,
            break_share_ci_low, break_share_ci_high, lift, separation, p_value_holm,
            tests_in_family, is_significant
        from gold.condition_outcomes
        where level_id = ? and approach_dir = ? and window_seconds = ?
        order by level_kind desc, grouping = 'pattern', grouping, member, held desc
        """,
        [level, direction, window],
    ).fetchall()
    if not rows:
        levels = sorted(
            {row[0] for row in connection.execute(
                "select distinct level_id from gold.condition_outcomes"
            ).fetchall()}
        )  # fmt: skip
        raise EvidenceCommandError(
            f"no triggers of --level {level} --dir {direction} in gold.condition_outcomes "
            f"(levels there: {', '.join(levels)}; directions UP, DOWN, ALL)"
        )
    where = "all levels" if level == POOLED else level
    way = "both directions" if direction == POOLED else f"approached {direction}"
    lines = [
        f"the four conditions in the {window} s before each trigger, {where}, {way} "
        "(C1/C2: the side beyond the level moves away / is pulled faster than added; "
        "C3/C4: the side behind)"
    ]
    for kind in KINDS:
        mine = [row for row in rows if row[0] == kind]
        if not mine:
            lines.append(f"  {kind} levels: no labelled triggers")
            continue
        tests = mine[0][13]
        lines.append(
            f"  {kind} levels  {'n':>5} {'sess':>4}  {'BREAK [95% session interval]':<28} "
            f"{'REJECT':>6} {'lift':>5} {'separation':>10} {'p (Holm)':>9}"
        )
        for (_, grouping, member, held, n, sessions, breaks, rejects, low, high, lift,
             separation, adjusted, _, significant) in mine:  # fmt: skip
            name = (
                "all triggers" if grouping == "all"
                else f"{member} {'held' if held else 'not held'}" if grouping == "condition"
                else f"pattern {member}"
            )  # fmt: skip
            interval = f"[{low:.2f}, {high:.2f}]" if low is not None else ""
            lines.append(
                f"    {name:<14}{n:>5,} {sessions:>4}  {breaks:4.2f} {interval:<23} "
                f"{rejects:6.2f} {_number(lift):>5} {_signed(separation):>10} "
                f"{_number(adjusted, 3):>9}{' *' if significant else ''}"
            )
        lines.append(
            f"    {tests} tested (each condition held and each pattern with enough triggers "
            "in and out), Holm-adjusted: * below alpha"
        )
    return lines


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"
