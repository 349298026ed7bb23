"""Baselines on retrieval's walk-forward folds: fitted on earlier sessions only, chance for the
null, signal found where there is one."""

from __future__ import annotations

import numpy as np
import pytest

from model_comparison import walk_forward
from model_comparison.metrics import (
    CALIBRATED_DRAWS,
    calibrated_ece,
    compare_models,
    expected_calibration_error,
    within_session_auc,
)
from model_comparison.walk_forward import (
    MODELS,
    ComparisonSettings,
    fold_gain_shares,
    walk_forward_folds,
    walk_forward_p_break,
)
from retrieval.evaluation import auc
from retrieval.neighbours import TriggerSet

SESSIONS = 10
PER_SESSION = 30


def synthetic_triggers(signal: float, seed: int = 3) -> TriggerSet:
    """Triggers whose BREAK odds rise with the first of six features (`signal` the slope)."""
    rng = np.random.default_rng(seed)
    n = SESSIONS * PER_SESSION
    vectors = rng.normal(size=(n, 6))
    p = 1 / (1 + np.exp(-signal * vectors[:, 0]))
    outcomes = np.where(rng.random(n) < p, "BREAK", np.where(rng.random(n) < 0.5, "REJECT", "CHOP"))
    days = np.datetime64("2024-03-01") + np.repeat(np.arange(SESSIONS), PER_SESSION)
    return TriggerSet(
        trigger_ids=np.array([f"t{i}" for i in range(n)]),
        sessions=days.astype("datetime64[D]"),
        vectors=vectors,
        outcomes=outcomes.astype(object).astype(str),
    )


@pytest.mark.parametrize("model", MODELS)
def test_no_fit_sees_a_later_session(model: str) -> None:
    """Relabel the last three sessions: every earlier session's scores stay the same bits."""
    triggers = synthetic_triggers(signal=2.0)
    before = walk_forward_p_break(triggers, model, ComparisonSettings())
    later = triggers.sessions >= triggers.sessions[-1] - np.timedelta64(2, "D")
    flipped = np.where(triggers.outcomes == "BREAK", "REJECT", "BREAK")
    triggers.outcomes = np.where(later, flipped, triggers.outcomes)
    after = walk_forward_p_break(triggers, model, ComparisonSettings())
    np.testing.assert_array_equal(before[~later], after[~later])
    assert np.isnan(before[:PER_SESSION]).all()  # the first session has nothing earlier
    assert not np.isnan(before[PER_SESSION:]).any()


def test_models_find_a_signal_the_null_does_not() -> None:
    triggers = synthetic_triggers(signal=3.0)
    scored = triggers.sessions > triggers.sessions[0]
    breaks = triggers.outcomes[scored] == "BREAK"
    aucs = {
        model: auc(breaks, walk_forward_p_break(triggers, model, ComparisonSettings())[scored])
        for model in MODELS
    }
    assert aucs["logistic"] > 0.8, aucs
    assert aucs["boosted_trees"] > 0.75, aucs
    assert aucs["retrieval"] > 0.65, aucs
    assert abs(aucs["null_retrieval"] - 0.5) < 0.08, aucs


def test_an_unknown_model_is_named() -> None:
    with pytest.raises(ValueError, match="unknown model 'forest'"):
        walk_forward_p_break(synthetic_triggers(1.0), "forest", ComparisonSettings())


def test_within_session_auc_counts_only_pairs_of_one_session() -> None:
    """Session A breaks more and scores higher; inside each session the scores rank nothing
    (A 2 of 2 pairs, B 0 of 2). Pooled, A's BREAKs outrank B's non-BREAKs: base-rate drift
    between sessions reads as skill (6 of 9); within sessions it is 0.5."""
    sessions = np.array(["A", "A", "A", "B", "B", "B"])
    labels = np.array([1, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.9, 0.8, 0.1, 0.2, 0.3])
    assert auc(labels, scores) == pytest.approx(6 / 9)
    assert within_session_auc(sessions, labels, scores) == 0.5
    tied = within_session_auc(sessions[:3], labels[:3], np.array([0.5, 0.4, 0.5]))
    assert tied == 0.25  # a tie counts half, the other pair is discordant
    assert np.isnan(within_session_auc(sessions, np.ones(6), scores))


def test_expected_calibration_error_weighs_bins_by_their_triggers() -> None:
    labels = np.array([1, 0, 0, 0, 1, 1])
    probabilities = np.array([0.05, 0.05, 0.05, 0.05, 0.95, 0.95])
    # bin 0: mean 0.05, rate 0.25 (4 of 6); bin 9: mean 0.95, rate 1.0 (2 of 6)
    expected = 4 / 6 * 0.20 + 2 / 6 * 0.05
    assert expected_calibration_error(labels, probabilities, 10) == pytest.approx(expected)


def walk_forward_tree_gain(
    triggers: TriggerSet, settings: ComparisonSettings
) -> tuple[int, np.ndarray]:
    """The folds whose trees split and their mean gain shares (tree_feature_gain's mean)."""
    shares = [
        fold_gain_shares(triggers, fold, settings)
        for fold in walk_forward_folds(triggers, settings)
        if fold.scored
    ]
    split = [share for share in shares if share is not None]
    return len(split), np.mean(split, axis=0)


def test_the_trees_gain_goes_to_the_feature_that_carries_the_signal() -> None:
    fits, shares = walk_forward_tree_gain(synthetic_triggers(signal=3.0), ComparisonSettings())
    # the first fold trains on one session's 30 triggers: no split leaves 20 on each side
    assert fits == SESSIONS - 2
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] > 0.5, shares  # and so the largest


def test_a_fold_fingerprint_changes_with_what_the_fold_reads_only() -> None:
    """Relabel session 5: folds 0-5 keep their fingerprints (they do not read it), folds 6-9
    get new ones; a vector of session 7 changes fold 7 and every later fold."""
    triggers = synthetic_triggers(signal=2.0)
    before = [fold.fingerprint for fold in walk_forward_folds(triggers, ComparisonSettings())]
    assert len(set(before)) == SESSIONS
    relabelled = synthetic_triggers(signal=2.0)
    fifth = relabelled.sessions == relabelled.sessions[0] + np.timedelta64(5, "D")
    relabelled.outcomes = np.where(fifth, "WHIPSAW", relabelled.outcomes)
    after = [fold.fingerprint for fold in walk_forward_folds(relabelled, ComparisonSettings())]
    assert after[:6] == before[:6]
    assert all(a != b for a, b in zip(after[6:], before[6:], strict=True))
    moved = synthetic_triggers(signal=2.0)
    moved.vectors[7 * PER_SESSION, 3] += 1e-9
    shifted = [fold.fingerprint for fold in walk_forward_folds(moved, ComparisonSettings())]
    assert shifted[:7] == before[:7]
    assert all(a != b for a, b in zip(shifted[7:], before[7:], strict=True))
    other = [
        fold.fingerprint for fold in walk_forward_folds(triggers, ComparisonSettings(max_trees=100))
    ]
    assert not set(other) & set(before)


def test_the_fitted_models_train_on_the_last_sessions_only() -> None:
    """With a window of 3 sessions, fold 6 trains the fits on sessions 3-5 and retrieval's
    neighbours come from sessions 0-5; its scores equal those of the triggers cut to
    sessions 3-6 for the fitted models."""
    triggers = synthetic_triggers(signal=2.0)
    settings = ComparisonSettings(training_sessions=3)
    fold = walk_forward_folds(triggers, settings)[6]
    first = triggers.sessions[0]
    assert set(triggers.sessions[fold.train]) == {first + np.timedelta64(d, "D") for d in (3, 4, 5)}
    assert len(fold.earlier) == 6 * PER_SESSION
    cut = (triggers.sessions >= first + np.timedelta64(3, "D")) & (
        triggers.sessions <= first + np.timedelta64(6, "D")
    )
    alone = TriggerSet(
        trigger_ids=triggers.trigger_ids[cut],
        sessions=triggers.sessions[cut],
        vectors=triggers.vectors[cut],
        outcomes=triggers.outcomes[cut],
    )
    for model in ("logistic", "boosted_trees"):
        windowed = walk_forward_p_break(triggers, model, settings)[fold.test]
        whole = walk_forward_p_break(alone, model, ComparisonSettings())[-PER_SESSION:]
        np.testing.assert_array_equal(windowed, whole)


def test_the_scores_and_the_gain_fit_each_folds_trees_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """model_walk_forward_scores and model_walk_forward_tree_gain run in one dbt process: the
    gain comes from the trees the scores were predicted with, not from a second fit; the same
    inputs fitted afresh give the same gain."""
    triggers = synthetic_triggers(signal=3.0, seed=29)  # rows no other test fits
    fits = []
    train = walk_forward.lightgbm.train
    monkeypatch.setattr(
        walk_forward.lightgbm, "train", lambda *a, **k: fits.append(1) or train(*a, **k)
    )
    walk_forward_p_break(triggers, "boosted_trees", ComparisonSettings())
    after_scores = len(fits)
    assert after_scores >= SESSIONS - 2  # early stopping's fit and the final one per fold
    gain = walk_forward_tree_gain(triggers, ComparisonSettings())
    assert len(fits) == after_scores
    monkeypatch.setattr(walk_forward, "_FITTED_TREES", walk_forward.OrderedDict())
    assert walk_forward_tree_gain(triggers, ComparisonSettings())[0] == gain[0]
    assert np.array_equal(walk_forward_tree_gain(triggers, ComparisonSettings())[1], gain[1])
    assert len(fits) == 2 * after_scores


def test_the_calibrated_noise_floor_is_the_mean_ece_of_bernoulli_labels() -> None:
    """All draws at once, the same bits as drawing each label set and measuring its ECE."""
    probabilities = np.round(np.random.default_rng(4).random(157), 2)
    expected = np.mean(
        [
            expected_calibration_error(draw_rng.random(157) < probabilities, probabilities, 10)
            for draw_rng in [np.random.default_rng(8)]
            for _ in range(CALIBRATED_DRAWS)
        ]
    )
    assert calibrated_ece(probabilities, 10, np.random.default_rng(8)) == expected


def test_models_are_compared_on_one_bootstrap_of_sessions() -> None:
    """Known point values, and the paired interval: a model identical to the null is exactly
    0 over it in every resample; a perfect ranker is above it."""
    sessions = np.repeat(np.array(["A", "B", "C", "D"]), 4)
    labels = np.tile(np.array([1, 0, 1, 0]), 4)
    null = np.tile(np.array([0.4, 0.6, 0.5, 0.5]), 4)
    perfect = np.tile(np.array([0.9, 0.1, 0.8, 0.2]), 4)
    base = np.full(16, 0.5)
    results = compare_models(
        sessions,
        labels,
        {"null": null, "copy": null.copy(), "perfect": perfect},
        base,
        null_model="null",
        calibration_bins=10,
        bootstrap_samples=200,
        seed=0,
    )
    assert results["perfect"]["auc"] == 1.0
    assert results["perfect"]["within_session_auc"] == 1.0
    assert results["perfect"]["within_session_pairs"] == 16
    assert results["null"]["within_session_auc"] == pytest.approx(
        within_session_auc(sessions, labels, null)
    )
    assert results["copy"]["auc_over_null_ci_low"] == results["copy"]["auc_over_null_ci_high"] == 0
    assert results["perfect"]["auc_over_null_ci_low"] > 0
    assert results["null"]["brier_base_rate"] == 0.25
    assert results["perfect"]["brier"] == pytest.approx(np.mean([0.01, 0.01, 0.04, 0.04]))
    assert results["perfect"]["brier_skill"] == pytest.approx(1 - 0.025 / 0.25)
    # perfect: bins 1, 2, 8 and 9, a quarter each, rates 0, 0, 1, 1
    assert results["perfect"]["expected_calibration_error"] == pytest.approx(0.15)


def test_a_calibrated_model_shows_an_ece_that_shrinks_with_the_triggers() -> None:
    """The noise floor: labels drawn from P itself still give ECE > 0 on few triggers."""
    rng = np.random.default_rng(5)
    few = calibrated_ece(rng.random(50), 10, np.random.default_rng(0))
    many = calibrated_ece(rng.random(5000), 10, np.random.default_rng(0))
    assert 0.05 < few < 0.2
    assert many < 0.02
    assert calibrated_ece(np.full(40, 1.0), 10, np.random.default_rng(0)) == 0.0
