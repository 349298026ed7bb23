"""Causality of the level features and trigger vectors: a one-session generated market
is built twice, the second time with every futures and options record received after a
trigger's time replaced by different data (prices moved); nothing known at that time changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pytest
import zstandard

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command
from ingest.landing import ingest
from synthetic_market.dbn_files import MBO_DTYPE
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market

pytestmark = pytest.mark.dbt

UNDEF_PRICE = np.iinfo(np.int64).max
GOLD_LEVEL_MODELS = "+trigger_vectors +trigger_outcomes"


def build(lake: Lake) -> None:
    result = subprocess.run(
        dbt_command(
            ["build", "--resource-type", "model", "seed", "--select", *GOLD_LEVEL_MODELS.split()]
        ),
        env=lake.environment(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:]


def query(lake: Lake, sql: str) -> list[tuple[object, ...]]:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def replace_records_after(path: Path, cutoff_ns: int, price_shift: int) -> int:
    """Rewrite a zstd MBO file with every record received at or after `cutoff_ns` moved by
    `price_shift` (1e-9 units): the same orders, different prices. Returns records changed."""
    data = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    header_length = 8 + int.from_bytes(data[4:8], "little")
    records = np.frombuffer(data[header_length:], dtype=MBO_DTYPE).copy()
    later = (records["ts_recv"] >= cutoff_ns) & (records["price"] != UNDEF_PRICE)
    records["price"][later] += price_shift
    payload = data[:header_length] + records.tobytes()
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(payload))
    return int(later.sum())


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("original") / "lake")
    simulate_market(lake.raw, MarketConfig(sessions=1, seed=5, scale=SCALES["tiny"]))
    ingest(lake.raw, lake, workers=2)
    build(lake)
    return lake


def test_records_after_a_trigger_change_nothing_known_at_it(original: Lake, tmp_path: Path) -> None:
    triggers = query(
        original,
        "select epoch_ns(ts) from gold.trigger_vectors order by ts",
    )
    assert len(triggers) >= 10, "the generated session should have many triggers"
    cutoff_ns = triggers[len(triggers) // 2][0]

    perturbed = Lake(tmp_path / "lake")
    shutil.copytree(original.raw, perturbed.raw)
    changed = replace_records_after(
        next((perturbed.raw / "ES.FUT" / "mbo").glob("*.dbn.zst")), cutoff_ns, 12 * 250_000_000
    )
    changed += replace_records_after(
        next((perturbed.raw / "ES.OPT" / "mbo").glob("*.dbn.zst")), cutoff_ns, 4 * 50_000_000
    )
    assert changed > 1000
    ingest(perturbed.raw, perturbed, workers=2)
    build(perturbed)

    known_at_cutoff = {
        "gold.trigger_vectors": f"ts <= make_timestamp({cutoff_ns // 1000})",
        "gold.level_features": f"window_end <= make_timestamp({cutoff_ns // 1000})",
        "gold.market_features": f"window_end <= make_timestamp({cutoff_ns // 1000})",
        "gold.approach_episodes": f"trigger_second < make_timestamp({cutoff_ns // 1000})",
    }
    for table, known in known_at_cutoff.items():
        columns = "*"
        if table == "gold.approach_episodes":  # an episode's exit may come after the cutoff
            columns = "episode_id, approach_dir, zone_entry_ts, trigger_second, trigger_level_price"
        sql = f"select {columns} from {table} where {known} order by all"
        before, after = query(original, sql), query(perturbed, sql)
        assert len(before) > 0, table
        assert before == after, f"{table}: rows known at the cutoff changed"

    # the replacement did change what came after
    later = (
        "select * from gold.level_features "
        f"where window_start > make_timestamp({cutoff_ns // 1000}) order by all"
    )
    assert query(original, later) != query(perturbed, later)
