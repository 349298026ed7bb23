"""The warehouse's SQL layers on a live day, run by DuckDB: the day's tables beside the
warehouse's earlier sessions, what is known before the session (the contract, the calendar,
calibration, the neighbours' indexes), and the models in stages by what the HUD draws: the
layers derived from the engine's rows (the heatmap's own tables, drawn as the engine makes
them), then the session's levels, features, triggers and neighbours."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from foundation.lake import Lake
from hud.warehouse import FRAME_PARTS
from live.day_tables import LiveTables
from live.model_runs import ModelRuns
from live.models import LiveModel, closure, compile_models, live_order
from live.session import LiveContract, LiveError
from live.signals import live_signals
from live.stages import Stages

NS = 1_000_000_000
SESSION_STAGE = "session"
COMPUTED_SOURCE = "retrieval_indexes"  # retrieval's signals, computed in Python


@dataclass
class LiveLayers:
    tables: LiveTables
    runs: ModelRuns
    stages: Stages

    def close(self) -> None:
        self.stages.close()
        self.tables.close()


def stage_groups(models: Mapping[str, LiveModel]) -> list[tuple[str, list[LiveModel]]]:
    """Each HUD frame part's tables with every model they read (not computed before), then
    the rest: each stage's models in the order they are computed."""
    computed = {
        name
        for name, model in models.items()
        if model.recompute in ("tail", "session") or model.source == COMPUTED_SOURCE
    }
    groups, done = [], set()
    for part, sources in FRAME_PARTS.items():
        names = (closure(models, sources) & computed) - done
        if names:  # the heatmap's tables are the engine's own: no model to run
            groups.append((str(part), live_order(models, names)))
            done |= names
    groups.append((SESSION_STAGE, live_order(models, computed - done)))
    return groups


def open_live_layers(
    lake: Lake,
    contract: LiveContract,
    emit: Callable[[str, pa.Table], None],
    step_ns: int,
) -> LiveLayers:
    """The SQL layers of the day over the warehouse's earlier sessions, with the rows known
    before the session made (and emitted)."""
    if not lake.duckdb_path.exists():
        raise LiveError(
            f"{lake.duckdb_path}: no warehouse; live reads its earlier sessions (calibration, "
            "neighbours): build it with `spymaster build` first"
        )
    models = compile_models()
    tables = LiveTables(lake.duckdb_path, contract.day, models)
    try:
        runs = ModelRuns(tables, {COMPUTED_SOURCE: live_signals(tables, lake, contract.day)})
        choice = contract_choice(tables, contract)
        tables.append("contract_day_selection", choice)
        emit("contract_day_selection", choice)
        before = {name for name, model in models.items() if model.recompute == "before_session"}
        for model in live_order(models, before):
            emit(model.name, runs.before_session(model))
        day_start = int(dt.datetime.combine(contract.day, dt.time(), dt.UTC).timestamp()) * NS
        stages = Stages(
            tables, runs, stage_groups(models), emit, step_ns, day_start, day_start + 86_400 * NS
        )
        stages.advance({"contract_choice": math.inf})
    except BaseException:
        tables.close()
        raise
    return LiveLayers(tables, runs, stages)


def contract_choice(tables: LiveTables, contract: LiveContract) -> pa.Table:
    """The day's contract_day_selection row live: the contract chosen before the day's volume
    is known, included; the volume columns stay unknown."""
    schema = tables.schema("contract_day_selection")
    row = dict.fromkeys(schema.names)
    row.update(
        dt=contract.day, selected_symbol=contract.symbol, is_low_dominance=False, is_included=True
    )
    return pa.Table.from_pylist([row], schema=schema)
