"""The retrieval library on hand-built vectors with known answers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import faiss
import numpy as np
import pyarrow as pa
import pytest

from retrieval import index_store
from retrieval.evaluation import (
    EvaluationSettings,
    SessionBootstrap,
    auc,
    column_aucs,
    evaluate,
    reliability_table,
    top_decile_lift,
    walk_forward_baselines,
)
from retrieval.index_store import SetupIndex, live_search_index
from retrieval.metric import SetupMetric
from retrieval.neighbours import (
    RetrievalSettings,
    TriggerSet,
    outcome_distribution,
    search_earlier,
    walk_forward,
)
from retrieval.scaling import RobustScaling
from retrieval.warehouse import trigger_signals


def test_robust_scaling_known_values_clipping_and_zero_mad() -> None:
    train = np.array([[1.0, 5.0, 0.0], [2.0, 5.0, 10.0], [3.0, 5.0, 20.0], [4.0, 5.0, 30.0]])
    scaling = RobustScaling.fit(train)
    assert scaling.median.tolist() == [2.5, 5.0, 15.0]
    assert scaling.mad.tolist() == [1.0, 0.0, 10.0]
    scaled = scaling.scale(np.array([[3.5, 9.0, 1000.0]]))
    # zero MAD: the dimension carries nothing; far values clip at 8
    assert scaled[0] == pytest.approx([1.0 / (1.4826 + 1e-6), 0.0, 8.0])
    assert scaling.scale(scaling.median[np.newaxis, :]).tolist() == [[0.0, 0.0, 0.0]]


def test_metric_weights_dimensions_by_break_separation_on_training_triggers() -> None:
    # dimension 0 orders BREAKs perfectly, 1 half way (AUC 0.75), 2 not at all (ties)
    train = np.array([[4.0, 4.0, 7.0], [3.0, 2.0, 7.0], [2.0, 3.0, 7.0], [1.0, 1.0, 7.0]])
    outcomes = np.array(["BREAK", "BREAK", "REJECT", "WHIPSAW"])
    metric = SetupMetric.fit(train, outcomes)
    assert metric.weights.tolist() == pytest.approx([0.5, 0.25, 0.0])
    query = np.array([[3.5, 9.0, 1000.0]])
    weighted = metric.scaling.scale(query)[0] * [0.5, 0.25, 0.0]
    transformed = metric.transform(query)
    assert transformed.dtype == np.float32
    assert transformed[0] == pytest.approx(weighted / np.linalg.norm(weighted), rel=1e-6)
    assert metric.transform(metric.scaling.median[np.newaxis, :]).tolist() == [[0.0, 0.0, 0.0]]
    # nothing to separate yet: every dimension counts the same
    same = SetupMetric.fit(train, np.array(["REJECT"] * 4))
    assert same.weights.tolist() == [1.0, 1.0, 1.0]
    assert SetupMetric.from_json(metric.to_json()).weights.tolist() == metric.weights.tolist()


def test_weights_let_the_signature_dimensions_outvote_the_noise() -> None:
    """Two signature dimensions among 78 of noise: unweighted, the cosine ranks breaks at AUC
    0.74 here; weighted, above 0.90."""
    rng = np.random.default_rng(5)
    n = 240
    is_break = rng.random(n) < 0.5
    vectors = rng.normal(0, 1, (n, 80))
    vectors[:, :2] += np.where(is_break, 1.0, -1.0)[:, None]
    triggers = TriggerSet(
        trigger_ids=np.array([f"T{i:03d}" for i in range(n)]),
        sessions=np.repeat(np.arange(12), n // 12).astype("datetime64[D]"),
        vectors=vectors,
        outcomes=np.where(is_break, "BREAK", "REJECT"),
    )
    signals = walk_forward(triggers, RetrievalSettings(k=15, min_neighbours=5))
    scored = ~np.isnan(signals.p_break)
    assert auc(is_break[scored], signals.p_break[scored]) > 0.90


def test_outcome_distribution_weights_similarity_and_counts_whipsaw_as_chop() -> None:
    p = outcome_distribution(
        np.array([1.0, 0.0, -1.0, 0.5]), np.array(["BREAK", "REJECT", "BREAK", "WHIPSAW"])
    )
    total = 1.0 + 0.5 + 0.0 + 0.75
    assert p == pytest.approx((1.0 / total, 0.5 / total, 0.75 / total))


def _triggers(rng: np.random.Generator, sessions: int, per_session: int) -> TriggerSet:
    """Two clusters: vectors near +u break, near -u reject."""
    n = sessions * per_session
    direction = rng.normal(size=12)
    labels = rng.random(n) < 0.5
    vectors = np.where(labels[:, None], 1.0, -1.0) * direction + rng.normal(0, 0.3, (n, 12))
    return TriggerSet(
        trigger_ids=np.array([f"T{i:03d}" for i in range(n)]),
        sessions=np.repeat(np.arange(sessions), per_session).astype("datetime64[D]"),
        vectors=vectors,
        outcomes=np.where(labels, "BREAK", "REJECT"),
    )


def test_walk_forward_uses_only_earlier_sessions_and_finds_the_cluster() -> None:
    triggers = _triggers(np.random.default_rng(1), sessions=6, per_session=10)
    signals = walk_forward(triggers, RetrievalSettings(k=5, min_neighbours=5))
    first = triggers.sessions == triggers.sessions[0]
    assert np.isnan(signals.p_break[first]).all()
    assert (signals.neighbour_count[first] == 0).all()
    later = ~first
    assert (signals.neighbour_count[later] == 5).all()
    position = {trigger: i for i, trigger in enumerate(triggers.trigger_ids)}
    for row in np.flatnonzero(later):
        assert all(
            triggers.sessions[position[neighbour]] < triggers.sessions[row]
            for neighbour in signals.neighbour_ids[row]
        )
    breaks = triggers.outcomes[later] == "BREAK"
    assert auc(breaks, signals.p_break[later]) > 0.95
    assert signals.p_break[later] + signals.p_reject[later] + signals.p_chop[later] == (
        pytest.approx(np.ones(later.sum()))
    )


def test_later_sessions_change_no_earlier_signal() -> None:
    triggers = _triggers(np.random.default_rng(2), sessions=5, per_session=8)
    before = walk_forward(triggers, RetrievalSettings(k=4, min_neighbours=3))
    changed = TriggerSet(
        trigger_ids=triggers.trigger_ids,
        sessions=triggers.sessions,
        vectors=triggers.vectors.copy(),
        outcomes=triggers.outcomes.copy(),
    )
    last = triggers.sessions == triggers.sessions[-1]
    changed.vectors[last] *= -3.0
    changed.outcomes[last] = "CHOP"
    after = walk_forward(changed, RetrievalSettings(k=4, min_neighbours=3))
    assert np.array_equal(before.p_break[~last], after.p_break[~last], equal_nan=True)
    assert before.neighbour_ids[: (~last).sum()] == after.neighbour_ids[: (~last).sum()]
    assert not np.array_equal(before.p_break[last], after.p_break[last])


def test_auc_and_lift_known_values() -> None:
    labels = np.array([True, False, True, False, True])
    assert auc(labels, np.array([0.9, 0.1, 0.8, 0.2, 0.7])) == 1.0
    assert auc(labels, np.array([0.1, 0.9, 0.2, 0.8, 0.3])) == 0.0
    assert auc(labels, np.full(5, 0.5)) == 0.5
    # positives 0.9, 0.5, 0.4 against negatives 0.5, 0.3: 2 + (0.5 + 1) + (0 + 1) = 4.5 of 6
    assert auc(labels, np.array([0.9, 0.5, 0.5, 0.3, 0.4])) == pytest.approx(4.5 / 6)
    assert np.isnan(auc(np.array([True, True]), np.array([0.1, 0.2])))
    with pytest.raises(ValueError, match="finite"):
        auc(labels, np.array([0.9, np.nan, 0.8, 0.2, 0.7]))
    many = np.array([True] * 2 + [False] * 18)
    scores = np.linspace(1.0, 0.0, 20)
    assert top_decile_lift(many, scores) == pytest.approx(1.0 / 0.1)


def pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney by counting every (BREAK, other) pair: wins, and ties as half."""
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return float("nan")
    wins = (positive[:, None] > negative).sum() + 0.5 * (positive[:, None] == negative).sum()
    return wins / (len(positive) * len(negative))


def test_the_bootstraps_ranking_metrics_are_auc_and_lift_of_each_resample() -> None:
    """Bit for bit the AUC of each resample's rows with every pair counted, and what
    top_decile_lift() gives on them: ties (scores on a coarse grid), sessions drawn twice,
    resamples holding one class (NaN) and sessions without any BREAK."""
    rng = np.random.default_rng(5)
    sessions = np.repeat(np.arange(5), [1, 3, 2, 9, 6]).astype("datetime64[D]")
    # the first three sessions without a BREAK: some resamples hold no BREAK at all
    labels = (rng.random(len(sessions)) < 0.5) & (sessions > sessions[5])
    scores = np.round(rng.random((3, len(sessions))), 1)
    bootstrap = SessionBootstrap.draw(sessions, 300, np.random.default_rng(9))
    unique = np.unique(sessions)
    aucs, lifts = bootstrap.ranking_metrics(labels, scores)
    assert aucs.shape == lifts.shape == (3, 300)
    assert np.isnan(lifts).any()
    assert np.isfinite(aucs).any()
    for sample in range(300):
        rows = bootstrap.sample_rows(sample)
        expected_rows = [np.flatnonzero(sessions == unique[i]) for i in bootstrap.chosen[sample]]
        assert np.array_equal(rows, np.concatenate(expected_rows))
        for model in range(3):
            expected_auc = pairwise_auc(labels[rows], scores[model][rows])
            expected_lift = top_decile_lift(labels[rows].astype(float), scores[model][rows])
            assert np.array_equal(aucs[model, sample], expected_auc, equal_nan=True)
            assert np.array_equal(lifts[model, sample], expected_lift, equal_nan=True)
    with pytest.raises(ValueError, match="finite"):
        bootstrap.ranking_metrics(labels, np.where(scores > 0.5, np.nan, scores))


def test_column_aucs_are_auc_of_each_column() -> None:
    """The metric's per-dimension AUCs and auc(), bit for bit the pairs counted one by one
    (the rank sum is exact): tied, constant and clipped columns; NaN with one class only."""
    rng = np.random.default_rng(6)
    labels = rng.random(300) < 0.3
    columns = np.column_stack(
        [
            rng.normal(size=300),
            np.round(rng.normal(size=300)),
            np.zeros(300),
            np.clip(rng.normal(size=300), -0.5, 0.5),
        ]
    )
    expected = [pairwise_auc(labels, column) for column in columns.T]
    assert np.array_equal(column_aucs(labels, columns), expected)
    assert [auc(labels, column) for column in columns.T] == expected
    assert np.isnan(column_aucs(np.ones(300, dtype=bool), columns)).all()
    with pytest.raises(ValueError, match="finite"):
        column_aucs(labels, np.where(columns > 1, np.nan, columns))


def test_baselines_are_walk_forward_and_time_of_day_is_shrunk() -> None:
    sessions = np.array([0, 0, 0, 1, 1, 2], dtype="datetime64[D]")
    minutes = np.array([10.0, 10.0, 100.0, 15.0, 100.0, 20.0])
    breaks = np.array([True, False, True, True, True, False])
    labelled = np.ones(6, dtype=bool)
    base, time_of_day = walk_forward_baselines(
        sessions, minutes, breaks, labelled, EvaluationSettings(time_of_day_prior_weight=2.0)
    )
    assert np.isnan(base[:3]).all()
    assert base[3:5].tolist() == [2 / 3, 2 / 3]
    assert base[5] == pytest.approx(4 / 5)
    # session 1, minute 15: bucket 0 holds 1 break of 2 earlier triggers
    assert time_of_day[3] == pytest.approx((1 + 2 * 2 / 3) / (2 + 2))
    # session 2, minute 20: bucket 0 holds 2 breaks of 3
    assert time_of_day[5] == pytest.approx((2 + 2 * 4 / 5) / (3 + 2))


def test_evaluation_intervals_cover_the_estimate_and_reliability_bins() -> None:
    rng = np.random.default_rng(3)
    sessions = np.repeat(np.arange(10), 20).astype("datetime64[D]")
    p = rng.random(200)
    labels = rng.random(200) < p
    base = np.full(200, labels.mean())
    result = evaluate(
        sessions,
        labels,
        p,
        base,
        base,
        EvaluationSettings(bootstrap_samples=200, reliability_bins=5),
    )
    metrics = result.metrics
    assert metrics["n"] == 200
    assert metrics["sessions"] == 10
    assert metrics["auc_ci_low"] < metrics["auc"] < metrics["auc_ci_high"]
    assert metrics["auc"] > 0.7
    assert metrics["brier"] < metrics["brier_base_rate"]
    assert metrics["brier_skill"] == pytest.approx(
        1 - metrics["brier"] / metrics["brier_base_rate"]
    )
    assert sum(row["n"] for row in result.reliability) == 200
    for row in result.reliability:
        assert row["p_low"] <= row["mean_p_break"] < row["p_high"]


def test_a_bins_mean_probability_stays_in_the_bin_when_every_value_is_its_edge() -> None:
    """Six predictions of exactly 0.4 average 0.39999999999999997 in floating point: the
    bin [0.4, 0.5) must still report 0.4 (the warehouse tests p_low <= mean < p_high)."""
    (row,) = reliability_table(np.ones(6), np.full(6, 0.4), 10)
    assert (row["p_low"], row["mean_p_break"], row["n"]) == (0.4, 0.4, 6)


def test_persisted_index_round_trip_and_live_search(tmp_path: Path) -> None:
    triggers = _triggers(np.random.default_rng(4), sessions=4, per_session=5)
    names = [f"f{i}" for i in range(12)]
    minutes = np.arange(20, dtype=np.float64)
    SetupIndex.build("PM_HIGH", "UP", triggers, names, minutes).save(tmp_path)
    SetupIndex.build("PM_HIGH", "UP", triggers, names, minutes).save(tmp_path)  # replaces it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["PM_HIGH_UP"]
    loaded = SetupIndex.load(tmp_path, "PM_HIGH", "UP")
    assert loaded.feature_names == names
    assert loaded.index.ntotal == 20
    assert loaded.minutes_since_open.tolist() == minutes.tolist()
    fitted = SetupMetric.fit(triggers.vectors, triggers.outcomes)
    assert loaded.metric.weights.tolist() == pytest.approx(fitted.weights.tolist())
    # a live setup: every indexed session is earlier; its nearest is the vector it copies
    similarities, positions = loaded.search(triggers.vectors[17] + 0.01, k=50)
    assert len(positions[0]) == 20
    assert positions[0][0] == 17
    assert list(similarities[0]) == sorted(similarities[0], reverse=True)
    with pytest.raises(FileNotFoundError, match="no index for PM_LOW DOWN"):
        SetupIndex.load(tmp_path, "PM_LOW", "DOWN")


def _setups(rng: np.random.Generator, count: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around `centres` (each vector one of them plus noise)."""
    vectors = centres[rng.integers(0, len(centres), count)]
    vectors = vectors + rng.normal(0, 0.5, vectors.shape)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_large_live_index_is_an_inverted_file_that_finds_the_exact_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the exact-search limit: k-means lists, 1/16 of them probed; on setups that come
    in families (as triggers do) a live query finds exactly what a scan of every vector
    finds; the same vectors give the same file; saved and loaded, it answers the same."""
    monkeypatch.setattr(index_store, "EXACT_SEARCH_LIMIT", 2_000)
    rng = np.random.default_rng(8)
    centres = rng.normal(0, 1, (40, 16))
    vectors = _setups(rng, 6_000, centres)
    index = live_search_index(vectors)
    assert isinstance(index, faiss.IndexIVFFlat)
    assert (index.nlist, index.nprobe) == (153, 9)  # min(4 sqrt(6000), 6000 // 39), / 16
    again = live_search_index(vectors)
    assert faiss.serialize_index(index).tobytes() == faiss.serialize_index(again).tobytes()
    queries = _setups(rng, 200, centres).astype(np.float32)
    exact = faiss.IndexFlatIP(16)
    exact.add(vectors.astype(np.float32))
    expected_similarities, expected = exact.search(queries, 15)
    similarities, found = index.search(queries, 15)
    assert np.array_equal(found, expected)
    np.testing.assert_allclose(similarities, expected_similarities, rtol=1e-5)
    small = live_search_index(vectors[:1_999])
    assert isinstance(small, faiss.IndexFlatIP)

    triggers = TriggerSet(
        trigger_ids=np.array([f"T{i}" for i in range(6_000)]),
        sessions=np.repeat(np.arange(60), 100).astype("datetime64[D]"),
        vectors=vectors,
        outcomes=rng.choice(np.array(["BREAK", "REJECT", "CHOP"]), 6_000),
    )
    names = [f"f{i}" for i in range(16)]
    built = SetupIndex.build("OR_LOW", "DOWN", triggers, names, np.zeros(6_000))
    folder = built.save(tmp_path)
    assert "9 of 153 k-means lists" in (folder / index_store.META_FILE).read_text()
    loaded = SetupIndex.load(tmp_path, "OR_LOW", "DOWN")
    assert loaded.index.nprobe == 9
    assert np.array_equal(loaded.search(queries[:20], 15)[1], built.search(queries[:20], 15)[1])


def test_search_earlier_fits_the_metric_on_earlier_sessions_only() -> None:
    triggers = _triggers(np.random.default_rng(6), sessions=5, per_session=6)
    session = triggers.sessions[20]
    similarities, positions = search_earlier(triggers, triggers.vectors[20:22], session, k=50)
    assert positions.shape == (2, 18)
    assert (triggers.sessions[positions] < session).all()
    changed = TriggerSet(
        trigger_ids=triggers.trigger_ids,
        sessions=triggers.sessions,
        vectors=triggers.vectors.copy(),
        outcomes=triggers.outcomes.copy(),
    )
    later = triggers.sessions >= session
    changed.vectors[later] = 100.0
    changed.outcomes[later] = "CHOP"
    again = search_earlier(changed, triggers.vectors[20:22], session, k=50)
    assert np.array_equal(positions, again[1])
    assert np.array_equal(similarities, again[0])
    assert search_earlier(triggers, triggers.vectors[:1], triggers.sessions[0], k=5)[1].shape == (
        1,
        0,
    )


def _signal_inputs(
    connection: duckdb.DuckDBPyConnection, triggers: TriggerSet
) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """retrieval_vectors and trigger_outcomes relations of one level and direction."""
    n = len(triggers.trigger_ids)
    minutes = np.arange(n, dtype=np.float64) % 90
    vectors = pa.table(
        {
            "trigger_id": triggers.trigger_ids,
            "level_id": ["pm_high"] * n,
            "approach_dir": ["UP"] * n,
            "dt": triggers.sessions,
            "ts": triggers.sessions.astype("datetime64[us]") + (minutes * 60e6).astype("m8[us]"),
            "minutes_since_open": minutes,
            "feature_vector": list(triggers.vectors),
        }
    )
    outcomes = pa.table({"trigger_id": triggers.trigger_ids, "outcome": triggers.outcomes})
    return connection.from_arrow(vectors), connection.from_arrow(outcomes)


def test_trigger_signals_take_unchanged_folds_from_the_previous_table() -> None:
    connection = duckdb.connect()
    settings = RetrievalSettings(k=4, min_neighbours=3)
    triggers = _triggers(np.random.default_rng(3), sessions=6, per_session=8)
    full = trigger_signals(*_signal_inputs(connection, triggers), settings, EvaluationSettings())
    # the same inputs over their own table: every fold kept, the same bits
    again = trigger_signals(
        *_signal_inputs(connection, triggers),
        settings,
        EvaluationSettings(),
        previous=connection.from_arrow(full),
    )
    assert again.equals(full)
    # a planted value in a kept fold stays (taken, not searched again); relabelling session 3
    # changes the folds after it, which are searched again and equal a full build's
    planted = full.set_column(
        full.schema.get_field_index("p_break"),
        "p_break",
        pa.array([0.123] * len(full), pa.float64()),
    )
    changed = TriggerSet(
        trigger_ids=triggers.trigger_ids,
        sessions=triggers.sessions,
        vectors=triggers.vectors,
        outcomes=triggers.outcomes.copy(),
    )
    third = changed.sessions == np.unique(changed.sessions)[3]
    changed.outcomes[third] = np.where(changed.outcomes[third] == "BREAK", "REJECT", "BREAK")
    rebuilt = trigger_signals(
        *_signal_inputs(connection, changed),
        settings,
        EvaluationSettings(),
        previous=connection.from_arrow(planted),
    )
    expected = trigger_signals(*_signal_inputs(connection, changed), settings, EvaluationSettings())
    kept = (triggers.sessions <= np.unique(triggers.sessions)[3]).sum()
    assert rebuilt["p_break"].to_pylist()[:kept] == [0.123] * kept
    assert rebuilt.slice(kept).equals(expected.slice(kept))
    before, after = full["fold_fingerprint"], expected["fold_fingerprint"]
    assert after.slice(0, kept).equals(before.slice(0, kept))
    assert not after.slice(kept).equals(before.slice(kept))
