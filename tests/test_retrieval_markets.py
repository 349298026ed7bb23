"""Walk-forward retrieval on two small generated markets with the same prices, approaches and
outcomes (SPEC 10 and 11): with the planted order-book signatures, P(BREAK) ranks the
pre-market levels' breaks at AUC >= 0.70 in both approach directions; without them (signal
strength 0, the control) no better than chance (AUC within 0.50 +- 0.07). Each direction pools
PM_HIGH and PM_LOW, each scored by its own walk-forward index: a small market has few
triggers per level and direction (see the README for the demo-size figures per level)."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from ingest.landing import ingest
from retrieval.evaluation import auc
from spymaster.lake import Lake
from synthetic_market.simulate import SCALES, MarketConfig, simulate_market
from tests.markets import dbt

pytestmark = pytest.mark.dbt

# what the retrieval needs, without the physics bands and calibration
MODELS = ["+trigger_signals", "+retrieval_evaluation"]
# After the March roll every session is an included ESM4 day. The signatures are planted in
# the futures book: a narrow option chain keeps the build short.
MARKET = {
    "sessions": 20,
    "seed": 3,
    "scale": SCALES["tiny"],
    "start_date": dt.date(2024, 3, 18),
    "strike_range": 10.0,
}


def built_market(root, signal_strength: float) -> Lake:
    lake = Lake(root / "lake")
    simulate_market(lake.raw, MarketConfig(**MARKET, signal_strength=signal_strength))
    ingest(lake.raw, lake, workers=2)
    dbt(lake, "build", "--resource-type", "model", "seed", "--select", *MODELS)
    return lake


@pytest.fixture(scope="module")
def signal_market(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return built_market(tmp_path_factory.mktemp("signal"), signal_strength=1.0)


@pytest.fixture(scope="module")
def control_market(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return built_market(tmp_path_factory.mktemp("control"), signal_strength=0.0)


def scored(lake: Lake, levels: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per approach direction: BREAK labels and walk-forward P(BREAK) of the levels' triggers."""
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        rows = connection.execute(
            "select signals.approach_dir, outcomes.outcome = 'BREAK', signals.p_break "
            "from gold.trigger_signals as signals "
            "join gold.trigger_outcomes as outcomes using (trigger_id) "
            "where signals.p_break is not null and outcomes.outcome is not null "
            "and signals.level_id in (select unnest(?)) order by signals.trigger_id",
            [list(levels)],
        ).fetchall()
    finally:
        connection.close()
    by_direction: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for direction in ("UP", "DOWN"):
        mine = [(label, p) for d, label, p in rows if d == direction]
        by_direction[direction] = (
            np.array([label for label, _ in mine]),
            np.array([p for _, p in mine]),
        )
    return by_direction


def test_signatures_make_pre_market_breaks_rankable_in_both_directions(
    signal_market: Lake,
) -> None:
    for direction, (labels, p_break) in scored(signal_market, ("PM_HIGH", "PM_LOW")).items():
        assert len(labels) >= 150, direction
        assert auc(labels, p_break) >= 0.70, direction


def test_control_market_is_no_better_than_chance_in_both_directions(
    control_market: Lake,
) -> None:
    for direction, (labels, p_break) in scored(control_market, ("PM_HIGH", "PM_LOW")).items():
        assert len(labels) >= 150, direction
        assert abs(auc(labels, p_break) - 0.50) <= 0.07, direction


def test_evaluation_table_agrees_with_the_signals(signal_market: Lake) -> None:
    connection = duckdb.connect(str(signal_market.duckdb_path), read_only=True)
    try:
        table = connection.execute(
            "select level_id, approach_dir, n, auc from gold.retrieval_evaluation"
        ).fetchall()
    finally:
        connection.close()
    assert {(level, direction) for level, direction, _, _ in table} >= {
        ("PM_HIGH", "UP"),
        ("PM_LOW", "DOWN"),
    }
    for level, direction, n, table_auc in table:
        labels, p_break = scored(signal_market, (level,))[direction]
        assert n == len(labels)
        assert table_auc == pytest.approx(auc(labels, p_break), nan_ok=True)
