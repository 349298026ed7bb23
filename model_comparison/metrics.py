"""Metrics the comparison adds to retrieval.evaluation's: AUC over pairs from one session only
(between-session drift of the base rate cannot leak into it), and the expected calibration
error."""

from __future__ import annotations

import numpy as np

from retrieval.evaluation import midranks


def within_session_auc(sessions: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a BREAK > score of a non-BREAK) over pairs from the same session, ties half;
    NaN when no session holds both classes."""
    labels = labels.astype(bool)
    concordant = 0.0
    pairs = 0
    for session in np.unique(sessions):
        mine = sessions == session
        positives = int(labels[mine].sum())
        negatives = int(mine.sum()) - positives
        if positives == 0 or negatives == 0:
            continue
        ranks = midranks(scores[mine])
        concordant += ranks[labels[mine]].sum() - positives * (positives + 1) / 2
        pairs += positives * negatives
    return float(concordant / pairs) if pairs else float("nan")


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> float:
    """Sum over equal-width bins of [0, 1] of (share of triggers) x |mean P - observed rate|."""
    labels = labels.astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in np.unique(which):
        mine = which == b
        error += mine.mean() * abs(probabilities[mine].mean() - labels[mine].mean())
    return float(error)
