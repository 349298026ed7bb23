"""The evaluation's own statistics against scikit-learn's, on random inputs: the AUC (with
ties and one class), its per-column and within-session forms, the Brier score and the log loss
(inside the probability floor, and clipped at it)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from model_comparison.metrics import within_session_auc
from retrieval import evaluation
from retrieval.evaluation import PROBABILITY_FLOOR, auc, brier, column_aucs

CASES = [(n, seed) for n in (2, 7, 40, 1000) for seed in range(5)]


def random_case(n: int, seed: int) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < rng.uniform(0.1, 0.9)
    labels[: min(2, n)] = [True, False][: min(2, n)]  # both classes
    return rng, labels


@pytest.mark.parametrize(("n", "seed"), CASES)
def test_auc_is_scikit_learns_roc_auc(n: int, seed: int) -> None:
    """Continuous scores, and scores on a coarse grid (many ties, counted half by both)."""
    rng, labels = random_case(n, seed)
    for scores in (rng.normal(size=n), np.round(rng.random(n), 1)):
        assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_without_both_classes_is_nan_as_scikit_learns() -> None:
    labels = np.ones(5, dtype=bool)
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        assert np.isnan(roc_auc_score(labels, np.arange(5.0)))
    assert np.isnan(auc(labels, np.arange(5.0)))


def test_column_aucs_are_scikit_learns_per_column() -> None:
    rng, labels = random_case(300, 11)
    columns = np.column_stack(
        [
            rng.normal(size=300),
            np.round(rng.random(300), 1),
            np.full(300, 2.0),
            -labels.astype(float),
        ]
    )
    expected = [roc_auc_score(labels, columns[:, j]) for j in range(columns.shape[1])]
    assert column_aucs(labels, columns) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_within_session_auc_is_scikit_learns_auc_pooled_over_session_pairs(seed: int) -> None:
    """Each session's AUC weighted by its BREAK x non-BREAK pairs; sessions with one class
    count nothing."""
    rng = np.random.default_rng(seed)
    sessions = rng.integers(0, 8, 400)
    labels = rng.random(400) < 0.4
    labels[sessions == 0] = True  # a session without a non-BREAK
    scores = np.round(rng.random(400) + 0.3 * labels, 2)
    weighted, pairs = 0.0, 0
    for session in np.unique(sessions):
        mine = sessions == session
        positives, negatives = labels[mine].sum(), (~labels[mine]).sum()
        if positives and negatives:
            weighted += roc_auc_score(labels[mine], scores[mine]) * positives * negatives
            pairs += positives * negatives
    assert within_session_auc(sessions, labels, scores) == pytest.approx(weighted / pairs)


@pytest.mark.parametrize(("n", "seed"), CASES)
def test_brier_is_scikit_learns_brier_score(n: int, seed: int) -> None:
    rng, labels = random_case(n, seed)
    probabilities = rng.random(n)
    expected = brier_score_loss(labels, probabilities)
    assert brier(labels.astype(float), probabilities) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(("n", "seed"), CASES)
def test_log_loss_is_scikit_learns_inside_the_floor_and_clipped_at_it(n: int, seed: int) -> None:
    """Inside [floor, 1 - floor] the same; outside it the probabilities are clipped first (a
    confident miss costs at most -log(floor))."""
    rng, labels = random_case(n, seed)
    inside = rng.uniform(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR, n)
    expected = log_loss(labels, inside, labels=[False, True])
    assert evaluation.log_loss(labels.astype(float), inside) == pytest.approx(expected, abs=1e-12)
    extreme = np.where(rng.random(n) < 0.5, 0.0, 1.0)
    clipped = np.clip(extreme, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    expected = log_loss(labels, clipped, labels=[False, True])
    assert evaluation.log_loss(labels.astype(float), extreme) == pytest.approx(expected, abs=1e-12)
