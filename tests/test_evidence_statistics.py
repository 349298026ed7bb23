"""The evidence statistics on hand-built triggers with known answers: walk-forward base
rates, within-session permutation p-values, Holm's adjustment (against statsmodels), and the
session-clustered intervals."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pyarrow as pa
import pytest
from statsmodels.stats.multitest import multipletests

from evidence.condition_outcomes import (
    PATTERNS,
    EvidenceSettings,
    _holm,
    _permutation_p_values,
    condition_outcomes,
    walk_forward_base_rates,
)

SETTINGS = EvidenceSettings(
    windows=(30,), bootstrap_samples=400, permutations=4000, min_triggers=5, alpha=0.05, seed=0
)


def conditions_table(
    days: list[str], outcomes: list[str | None], flags: np.ndarray, kind: str = "real"
) -> pa.Table:
    """trigger_conditions rows with their outcomes: `flags` triggers x 4 (C1..C4)."""
    n = len(days)
    columns: dict[str, object] = {
        "trigger_id": [f"t{i:04d}" for i in range(n)],
        "dt": pa.array(np.array(days, dtype="datetime64[D]")),
        "level_id": ["PM_HIGH"] * n,
        "level_kind": [kind] * n,
        "approach_dir": ["UP"] * n,
        "outcome": outcomes,
        "window_valid_30s": [True] * n,
    }
    for i, condition in enumerate(("c1", "c2", "c3", "c4")):
        columns[f"{condition}_30s"] = flags[:, i].tolist()
    columns["pattern_30s"] = ["".join(str(int(f)) for f in row) for row in flags]
    return pa.table(columns)


def rows_of(table: pa.Table, **where: object) -> list[dict[str, object]]:
    return [
        row for row in table.to_pylist() if all(row[key] == value for key, value in where.items())
    ]


def test_base_rates_use_only_earlier_sessions_of_the_same_group() -> None:
    sessions = np.array(["2024-03-04"] * 2 + ["2024-03-05"] * 2 + ["2024-03-06"], "datetime64[D]")
    groups = np.array(["a", "a", "a", "b", "a"])
    outcomes = np.array(["BREAK", "REJECT", "BREAK", "BREAK", "CHOP"])
    rates = walk_forward_base_rates(sessions, groups, outcomes)
    # a: none before the first day; 1 of 2 before the second; 2 of 3 before the third
    np.testing.assert_array_equal(rates[[0, 1]], [np.nan, np.nan])
    assert rates[2] == 0.5
    assert np.isnan(rates[3])  # b's first day
    assert rates[4] == pytest.approx(2 / 3)


def test_holm_agrees_with_statsmodels_on_random_p_values() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 30):
        p_values = rng.random(size) ** 3
        expected = multipletests(p_values, method="holm")[1]
        np.testing.assert_allclose(_holm(p_values.tolist()), expected, rtol=0, atol=1e-12)


def test_a_mask_that_only_marks_a_session_is_never_a_finding() -> None:
    """Session A broke every time and B rejected every time: a 'pattern' that holds on A's
    triggers only separates BREAK from REJECT perfectly, but within each session it changes
    nothing: every within-session permutation is as extreme (p = 1)."""
    outcomes = np.array(["BREAK"] * 10 + ["REJECT"] * 10)
    sessions = np.repeat([0, 1], 10)
    mask = sessions == 0
    rng = np.random.default_rng(0)
    assert _permutation_p_values(outcomes, sessions, [mask], 200, rng) == [1.0]


def test_a_mask_that_separates_within_sessions_has_the_smallest_p_value() -> None:
    outcomes = np.array(["BREAK", "REJECT"] * 20)
    sessions = np.repeat(np.arange(4), 10)
    mask = outcomes == "BREAK"
    [p] = _permutation_p_values(outcomes, sessions, [mask], 300, np.random.default_rng(1))
    assert p == pytest.approx(1 / 301)


def test_the_drawn_p_value_converges_to_the_exact_permutation_p_value() -> None:
    """Two sessions of four triggers: all 4! x 4! within-session orders enumerated give the
    exact p-value of each mask; 20,000 draws land within 4 standard errors of it."""
    outcomes = np.array(["BREAK", "REJECT", "CHOP", "BREAK", "REJECT", "REJECT", "BREAK", "CHOP"])
    sessions = np.repeat([0, 1], 4)
    masks = [np.array([1, 0, 1, 0, 1, 1, 0, 0], bool), np.array([1, 1, 0, 0, 0, 0, 1, 0], bool)]

    def separation(order: np.ndarray, mask: np.ndarray) -> float:
        drawn = outcomes[order]
        decided = (drawn == "BREAK") | (drawn == "REJECT")
        inside, outside = decided & mask, decided & ~mask
        if not inside.any() or not outside.any():
            return 0.0
        return np.mean(drawn[inside] == "BREAK") - np.mean(drawn[outside] == "BREAK")

    orders = [
        np.r_[first, np.array(second) + 4]
        for first in permutations(range(4))
        for second in permutations(range(4))
    ]
    draws = 20_000
    drawn = _permutation_p_values(outcomes, sessions, masks, draws, np.random.default_rng(3))
    for mask, p in zip(masks, drawn, strict=True):
        observed = abs(separation(np.arange(8), mask))
        exact = np.mean([abs(separation(order, mask)) >= observed - 1e-12 for order in orders])
        assert 0 < exact < 1
        assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / draws) + 1 / draws, (p, exact)


def test_a_planted_condition_is_found_and_noise_is_not() -> None:
    """C1 holds before 70% of the breaks and 20% of the rejects; C2..C4 are coin flips. C1 is
    significant after Holm's adjustment; the other conditions are not; the shares sum to one
    and every interval holds its estimate."""
    rng = np.random.default_rng(7)
    n = 400
    days = [f"2024-03-{4 + i // 40:02d}" for i in range(n)]
    outcomes = rng.choice(["BREAK", "REJECT", "CHOP"], size=n, p=[0.45, 0.45, 0.10])
    flags = rng.random((n, 4)) < 0.5
    flags[:, 0] = np.where(outcomes == "BREAK", rng.random(n) < 0.7, rng.random(n) < 0.2)
    table = condition_outcomes(conditions_table(days, list(outcomes), flags), SETTINGS)

    [c1] = rows_of(table, level_id="PM_HIGH", approach_dir="UP", member="C1", held=True)
    assert c1["is_significant"] is True
    assert c1["separation"] > 0.3
    assert c1["n"] == flags[:, 0].sum()
    assert c1["sessions"] == 10
    assert c1["break_share"] == pytest.approx(np.mean(outcomes[flags[:, 0]] == "BREAK"))
    # the family: the tests of every group at the level kind and window, here four groups
    # of the same triggers (PM_HIGH or ALL, UP or ALL)
    patterns = np.array(["".join(str(int(f)) for f in row) for row in flags])
    sizes = [(patterns == pattern).sum() for pattern in PATTERNS]
    tested = 4 + sum(min(size, n - size) >= SETTINGS.min_triggers for size in sizes)
    assert c1["tests_in_family"] == 4 * tested
    for member in ("C2", "C3", "C4"):
        [row] = rows_of(table, level_id="PM_HIGH", approach_dir="UP", member=member, held=True)
        assert row["is_significant"] is False, row
    for row in table.to_pylist():
        total = row["break_share"] + row["reject_share"] + row["chop_share"] + row["whipsaw_share"]
        assert total == pytest.approx(1.0)
        if row["break_share_ci_low"] is not None:
            assert row["break_share_ci_low"] <= row["break_share"] <= row["break_share_ci_high"]
    # the pooled families hold the same triggers here (one level, one direction)
    [pooled] = rows_of(table, level_id="ALL", approach_dir="ALL", member="C1", held=True)
    assert pooled["n"] == c1["n"]
    assert pooled["break_share"] == c1["break_share"]


def test_unlabelled_triggers_do_not_count_and_the_table_is_the_same_twice() -> None:
    days = ["2024-03-04"] * 6 + ["2024-03-05"] * 6
    outcomes = ["BREAK", "REJECT", None, "CHOP", "BREAK", "REJECT"] * 2
    flags = np.tile(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]], bool), (4, 1))
    table = conditions_table(days, outcomes, flags)
    first = condition_outcomes(table, SETTINGS)
    assert first.equals(condition_outcomes(table, SETTINGS))
    [everything] = rows_of(first, level_id="PM_HIGH", approach_dir="UP", grouping="all")
    assert everything["n"] == 10
    # the first session has no base rate: the lift is over the second's triggers
    assert everything["base_rate"] == pytest.approx(2 / 5)
    assert everything["lift"] == pytest.approx((2 / 5) / (2 / 5))


def test_a_condition_that_never_held_has_no_test_on_either_row() -> None:
    """C4 never holds: its 'not held' row is every trigger and carries no test (C3's, tested
    just before it, must not leak into it); C3's 'not held' row carries C3's test."""
    rng = np.random.default_rng(5)
    n = 200
    days = [f"2024-03-{4 + i // 20:02d}" for i in range(n)]
    outcomes = rng.choice(["BREAK", "REJECT"], size=n)
    flags = rng.random((n, 4)) < 0.5
    flags[:, 3] = False
    table = condition_outcomes(conditions_table(days, list(outcomes), flags), SETTINGS)
    group = {"level_id": "PM_HIGH", "approach_dir": "UP"}
    assert rows_of(table, **group, member="C4", held=True) == []
    [never] = rows_of(table, **group, member="C4", held=False)
    assert never["n"] == n
    assert (never["p_value"], never["p_value_holm"], never["is_significant"]) == (None,) * 3
    [held] = rows_of(table, **group, member="C3", held=True)
    [not_held] = rows_of(table, **group, member="C3", held=False)
    assert held["p_value"] is not None
    assert (not_held["p_value"], not_held["p_value_holm"]) == (
        held["p_value"],
        held["p_value_holm"],
    )
