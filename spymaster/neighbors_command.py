"""`spymaster neighbors`: the most similar setups of earlier sessions to a level's latest
trigger at a moment, with what happened after each. As in the walk-forward evaluation, the
metric is fitted on those earlier sessions only: the persisted index, fitted on every session,
would let later sessions shape a historical answer."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import duckdb
import numpy as np

from foundation.lake import Lake
from foundation.project import project_vars
from retrieval.neighbours import TriggerSet, outcome_distribution, search_earlier


class NeighborsCommandError(ValueError):
    """A query the warehouse cannot answer (no trigger, no index)."""


def _query_trigger(
    connection: duckdb.DuckDBPyConnection, level: str, at_ns: int
) -> tuple[str, dt.date, dt.datetime, str, float, list[float]]:
    day = dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC).date()
    row = connection.execute(
        "select trigger_id, triggers.dt, triggers.ts, triggers.approach_dir, "
        "triggers.level_price, retrieval.feature_vector "
        "from gold.trigger_vectors as triggers "
        "join gold.retrieval_vectors as retrieval using (trigger_id) "
        "where triggers.level_id = ? and triggers.dt = ? and triggers.ts <= make_timestamp(?) "
        "order by triggers.ts desc limit 1",
        [level, day, at_ns // 1000],
    ).fetchone()
    if row is None:
        moment = dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC).isoformat()
        raise NeighborsCommandError(
            f"no {level} trigger on {day} at or before {moment} in gold.trigger_vectors"
        )
    return row


def _history(
    connection: duckdb.DuckDBPyConnection,
    level: str,
    direction: str,
    day: dt.date,
    dimensions: int,
) -> TriggerSet:
    """The level and direction's labelled triggers of sessions before `day`, in time order
    (none on the first session)."""
    rows = connection.execute(
        "select vectors.trigger_id, vectors.dt, vectors.feature_vector, outcomes.outcome "
        "from gold.retrieval_vectors as vectors "
        "join gold.trigger_outcomes as outcomes using (trigger_id) "
        "where vectors.level_id = ? and vectors.approach_dir = ? and vectors.dt < ? "
        "and outcomes.outcome is not null order by vectors.ts, vectors.trigger_id",
        [level, direction, day],
    ).fetchall()
    return TriggerSet(
        trigger_ids=np.array([row[0] for row in rows], dtype=str),
        sessions=np.array([row[1] for row in rows], dtype="datetime64[D]"),
        vectors=np.array([row[2] for row in rows], dtype=np.float64).reshape(len(rows), dimensions),
        outcomes=np.array([row[3] for row in rows], dtype=str),
    )


def neighbors(lake: Lake, level: str, at_ns: int, k: int) -> dict[str, object]:
    if not lake.duckdb_path.exists():
        raise NeighborsCommandError(f"{lake.duckdb_path}: no warehouse yet (run `spymaster build`)")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        trigger_id, day, ts, direction, level_price, vector = _query_trigger(
            connection, level, at_ns
        )
        history = _history(connection, level, direction, day, len(vector))
        found_similarities, found_positions = search_earlier(
            history, np.asarray([vector], dtype=np.float64), np.datetime64(day, "D"), k
        )
        similarities, positions = found_similarities[0], found_positions[0]
        ids = [str(history.trigger_ids[p]) for p in positions]
        details = {
            row[0]: row[1:]
            for row in connection.execute(
                "select vectors.trigger_id, vectors.ts, vectors.level_price, outcomes.outcome, "
                "outcomes.seconds_to_first_hit, outcomes.max_favorable_excursion_ticks, "
                "outcomes.max_adverse_excursion_ticks "
                "from gold.trigger_vectors as vectors "
                "join gold.trigger_outcomes as outcomes using (trigger_id) "
                "where vectors.trigger_id in (select unnest(?))",
                [ids],
            ).fetchall()
        }
        own = connection.execute(
            "select outcome from gold.trigger_outcomes where trigger_id = ?", [trigger_id]
        ).fetchone()
    finally:
        connection.close()
    outcomes = np.asarray([details[i][2] or "" for i in ids])
    distribution = outcome_distribution(similarities.astype(np.float64), outcomes) if ids else None
    return {
        "trigger_id": trigger_id,
        "level_id": level,
        "approach_dir": direction,
        "ts": ts.isoformat() + "Z",
        "level_price": level_price,
        "outcome": own[0] if own else None,
        "p_break": distribution[0] if distribution else None,
        "p_reject": distribution[1] if distribution else None,
        "p_chop": distribution[2] if distribution else None,
        "neighbors": [
            {
                "trigger_id": neighbour,
                "dt": str(history.sessions[position]),
                "ts": details[neighbour][0].isoformat() + "Z",
                "level_price": details[neighbour][1],
                "similarity": float(similarity),
                "outcome": details[neighbour][2],
                "seconds_to_first_hit": details[neighbour][3],
                "max_favorable_excursion_ticks": details[neighbour][4],
                "max_adverse_excursion_ticks": details[neighbour][5],
            }
            for neighbour, position, similarity in zip(ids, positions, similarities, strict=True)
        ],
    }


def neighbors_text(result: dict[str, object]) -> str:
    zone = ZoneInfo(str(project_vars()["exchange_timezone"]))

    def local(iso: str) -> str:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    lines = [
        f"{result['level_id']} {result['approach_dir']} at {result['level_price']:.2f}, "
        f"trigger {result['trigger_id']} ({local(str(result['ts']))} New York), "
        f"outcome {result['outcome'] or 'unknown'}",
    ]
    found = result["neighbors"]
    if not found:
        lines.append("no earlier session has a trigger of this level and direction")
        return "\n".join(lines)
    lines.append(
        f"{len(found)} most similar setups of earlier sessions: P(BREAK) {result['p_break']:.2f}  "
        f"P(REJECT) {result['p_reject']:.2f}  P(CHOP) {result['p_chop']:.2f}"
    )
    lines.append("  rank  when (New York)       level     similarity  outcome  s to hit  MFE  MAE")

    def shown(value: object) -> str:
        # round() to an int: a zero excursion prints 0, not -0
        return "-" if value is None else str(round(value))

    for rank, row in enumerate(found, start=1):
        lines.append(
            f"  {rank:>4}  {local(row['ts'])}  {row['level_price']:8.2f}  {row['similarity']:10.3f}"
            f"  {row['outcome'] or '-':<7}  {shown(row['seconds_to_first_hit']):>8}"
            f"  {shown(row['max_favorable_excursion_ticks']):>3}"
            f"  {shown(row['max_adverse_excursion_ticks']):>3}"
        )
    return "\n".join(lines)


def run_neighbors(lake_arg: str | None, level: str, at_ns: int, k: int, as_json: bool) -> str:
    result = neighbors(Lake.resolve(lake_arg), level, at_ns, k)
    return json.dumps(result) if as_json else neighbors_text(result)
