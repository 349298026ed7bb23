"""The warehouse's models as live runs them: every model and seed as `dbt compile` renders it
from the project's own files, and what its `meta.live` says about keeping it current.

A model's `meta.live` says how:
- `source`: filled by the live session (the engine's tables, the contract's futures records,
  the contract choice, the retrieval signals);
- `recompute: before_session`: needs only earlier sessions (calibration, the calendar): run once;
- `recompute: tail`: rows keyed by `time_column`, complete `period_seconds` after it; each run
  reads its parents from `lookback_seconds` before its first new row and keeps the new rows;
- `recompute: session`: small per-day tables (bars, levels, episodes, triggers) recomputed over
  the session so far.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command, project_digest

NS = 1_000_000_000
# under the project's target/; v1: the fields _compiled_nodes keeps
COMPILED_NODES = "live-models-v1-{digest}.json"


class LiveSqlError(Exception):
    """The SQL layers cannot run live; the message names the model or relation."""


@dataclass(frozen=True)
class LiveModel:
    name: str
    schema: str
    relation: str  # as compiled SQL names it: "spymaster"."<schema>"."<name>"
    sql: str | None
    parents: tuple[str, ...]
    source: str | None
    recompute: str | None
    time_column: str | None = None
    period_ns: int = 0
    lookback_ns: int = 0
    # (parent, its column): the parent whose rows this model's rows come from, when not all
    # time-keyed parents make rows (a trigger vector per triggered episode)
    rows_from: tuple[str, str] | None = None
    materialized: str | None = None  # as dbt builds it in the warehouse

    @property
    def is_live(self) -> bool:
        return self.source is not None or self.recompute is not None

    def compiled_sql(self) -> str:
        if self.sql is None:
            raise LiveSqlError(f"{self.name}: no compiled SQL")
        return self.sql


@cache
def compile_models() -> dict[str, LiveModel]:
    """Every model and seed of the project as `dbt compile` renders it with the project's vars,
    against a scratch lake (compiling never opens the warehouse). Compiled once per version of
    the project's files and dbt (target/live-models-<digest>.json): a compile costs 10-17 s."""
    cached = PROJECT_ROOT / "target" / COMPILED_NODES.format(digest=project_digest())
    if cached.exists():
        nodes = json.loads(cached.read_text())
    else:
        nodes = _compiled_nodes()
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_name(f".{cached.name}.{os.getpid()}.part")
        part.write_text(json.dumps(nodes, sort_keys=True))
        part.replace(cached)
    models = {}
    for node in nodes:
        live = (node["config"].get("meta") or {}).get("live") or {}
        models[node["name"]] = LiveModel(
            name=node["name"],
            schema=node["schema"],
            relation=node["relation_name"],
            sql=node.get("compiled_code"),
            parents=tuple(
                parent.split(".")[-1]
                for parent in node.get("depends_on", {}).get("nodes", [])
                if parent.split(".")[0] in ("model", "seed")
            ),
            source=live.get("source"),
            recompute=live.get("recompute"),
            time_column=live.get("time_column"),
            period_ns=int(live.get("period_seconds", 0)) * NS,
            lookback_ns=int(live.get("lookback_seconds", 0)) * NS,
            rows_from=tuple(live["rows_from"].split(".")) if "rows_from" in live else None,
            materialized=node["config"].get("materialized"),
        )
    return models


def _compiled_nodes() -> list[dict]:
    """The models' and seeds' manifest nodes (the fields live reads) from `dbt compile`."""
    with tempfile.TemporaryDirectory(prefix="spymaster-live-") as scratch:
        target = Path(scratch) / "target"
        command = dbt_command(
            ["compile", "--target-path", str(target), "--no-populate-cache", "--quiet"]
        )
        done = subprocess.run(
            command,
            env=Lake(Path(scratch)).environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LiveSqlError(f"dbt compile failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        manifest = json.loads((target / "manifest.json").read_text())
    fields = ("name", "schema", "relation_name", "compiled_code", "depends_on", "config")
    return sorted(
        (
            {field: node.get(field) for field in fields}
            for node in manifest["nodes"].values()
            if node["resource_type"] in ("model", "seed")
        ),
        key=lambda node: node["name"],
    )


def live_order(models: Mapping[str, LiveModel], names: Collection[str]) -> list[LiveModel]:
    """The live models among `names`, each after its live parents among them."""
    ordered: list[LiveModel] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in names:
            return
        seen.add(name)
        for parent in models[name].parents:
            visit(parent)
        ordered.append(models[name])

    for name in sorted(names):
        if models[name].is_live:
            visit(name)
    return [model for model in ordered if model.is_live]


def closure(models: Mapping[str, LiveModel], names: Collection[str]) -> set[str]:
    """`names` and every live model they read, transitively."""
    found: set[str] = set()
    pending = [name for name in names if models[name].is_live]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += [p for p in models[name].parents if models[p].is_live]
    return found
