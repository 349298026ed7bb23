"""Metrics the comparison adds to retrieval.evaluation's: AUC over pairs from one session only
(between-session drift of the base rate cannot leak into it), the expected calibration error,
and every model's metrics with intervals from one session bootstrap shared by all models (the
same resampled sessions score each model, so differences between models have intervals too)."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np

from retrieval.evaluation import (
    SessionBootstrap,
    auc,
    brier,
    concordant_pairs,
    log_loss,
    top_decile_lift,
)

# what model_scores holds, retrieval's last (imported without LightGBM or scikit-learn: the
# summary names them)
MODELS = ("null_retrieval", "logistic", "boosted_trees", "retrieval")


def session_concordance(
    sessions: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per session (np.unique order): the session, its concordant BREAK/non-BREAK pairs (ties
    half) and its pairs."""
    labels = labels.astype(bool)
    unique = np.unique(sessions)
    concordant = np.zeros(len(unique))
    pairs = np.zeros(len(unique))
    for i, session in enumerate(unique):
        mine = sessions == session
        positives = int(labels[mine].sum())
        negatives = int(mine.sum()) - positives
        if positives == 0 or negatives == 0:
            continue
        concordant[i] = concordant_pairs(labels[mine], scores[mine])
        pairs[i] = positives * negatives
    return unique, concordant, pairs


def within_session_auc(sessions: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a BREAK > score of a non-BREAK) over pairs from the same session, ties half;
    NaN when no session holds both classes."""
    _, concordant, pairs = session_concordance(sessions, labels, scores)
    return float(concordant.sum() / pairs.sum()) if pairs.sum() else float("nan")


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


CALIBRATED_DRAWS = 200


def calibrated_ece(probabilities: np.ndarray, bins: int, rng: np.random.Generator) -> float:
    """The ECE a perfectly calibrated model with these probabilities would show on this many
    triggers (mean over CALIBRATED_DRAWS draws of labels ~ Bernoulli(P)): the noise floor the
    measured ECE is read against. The draws share the bins and their mean P: each draw's
    error is summed as expected_calibration_error sums it, bin by bin, all draws at once."""
    drawn = np.array(
        [rng.random(len(probabilities)) < probabilities for _ in range(CALIBRATED_DRAWS)]
    ).reshape(CALIBRATED_DRAWS, len(probabilities))
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    error = np.zeros(CALIBRATED_DRAWS)
    for b in np.unique(which):
        mine = which == b
        rates = drawn[:, mine].sum(axis=1) / mine.sum()
        error += mine.mean() * np.abs(probabilities[mine].mean() - rates)
    return float(np.mean(error))


def _point_metrics(labels: np.ndarray, p: np.ndarray, base: np.ndarray) -> dict[str, float]:
    brier_model, brier_base = brier(labels, p), brier(labels, base)
    loss_model, loss_base = log_loss(labels, p), log_loss(labels, base)
    return {
        "auc": auc(labels, p),
        "brier": brier_model,
        "brier_base_rate": brier_base,
        "brier_skill": 1 - brier_model / brier_base if brier_base > 0 else float("nan"),
        "log_loss": loss_model,
        "log_loss_base_rate": loss_base,
        "log_loss_skill": 1 - loss_model / loss_base if loss_base > 0 else float("nan"),
        "top_decile_lift": top_decile_lift(labels, p),
    }


def _interval(values: list[float]) -> tuple[float, float]:
    finite = np.asarray(values)[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def compare_models(
    sessions: np.ndarray,
    labels: np.ndarray,
    p_break: Mapping[str, np.ndarray],
    base_rate: np.ndarray,
    null_model: str,
    calibration_bins: int,
    bootstrap_samples: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Per model, on the same triggers: AUC, within-session AUC, Brier and log loss with their
    skill against the walk-forward base rate, ECE (and what a calibrated model would show on
    as many triggers) and top-decile lift; `<metric>_ci_low/high`
    2.5% and 97.5% of a bootstrap of whole sessions, and `auc_over_null` (with interval): the
    model's AUC minus the null model's on the same resampled sessions."""
    labels = labels.astype(float)
    unique = np.unique(sessions)
    members = [np.flatnonzero(sessions == session) for session in unique]
    concordance = {
        model: session_concordance(sessions, labels, p)[1:] for model, p in p_break.items()
    }
    results: dict[str, dict[str, float]] = {}
    for model, p in p_break.items():
        concordant, pairs = concordance[model]
        results[model] = {
            "n": len(labels),
            "sessions": len(unique),
            "base_rate": float(labels.mean()) if len(labels) else float("nan"),
            **_point_metrics(labels, p, base_rate),
            "within_session_auc": float(concordant.sum() / pairs.sum())
            if pairs.sum()
            else float("nan"),
            "within_session_pairs": int(pairs.sum()),
            "expected_calibration_error": expected_calibration_error(labels, p, calibration_bins),
            "expected_calibration_error_if_calibrated": calibrated_ece(
                p, calibration_bins, np.random.default_rng([seed, 1])
            ),
        }
    for model in p_break:
        results[model]["auc_over_null"] = results[model]["auc"] - results[null_model]["auc"]
    # per session sums: a resample's Brier scores are sums over its sessions, no re-scoring
    squared_errors = {
        model: np.array([((p[rows] - labels[rows]) ** 2).sum() for rows in members])
        for model, p in p_break.items()
    }
    base_squared_errors = np.array(
        [((base_rate[rows] - labels[rows]) ** 2).sum() for rows in members]
    )
    bootstrap = SessionBootstrap.draw(sessions, bootstrap_samples, np.random.default_rng(seed))
    models = list(p_break)
    aucs, lifts = bootstrap.ranking_metrics(
        labels, np.array([p_break[model] for model in models]).reshape(len(models), len(labels))
    )
    null_aucs = aucs[models.index(null_model)]
    draws = {}
    for m, model in enumerate(models):
        concordant, pairs = concordance[model]
        within, skill = [], []
        for chosen in bootstrap.chosen:
            within.append(
                concordant[chosen].sum() / pairs[chosen].sum() if pairs[chosen].sum() else np.nan
            )
            base_error = base_squared_errors[chosen].sum()
            skill.append(
                1 - squared_errors[model][chosen].sum() / base_error if base_error > 0 else np.nan
            )
        draws[model] = {
            "auc": aucs[m],
            "within_session_auc": within,
            "brier_skill": skill,
            "top_decile_lift": lifts[m],
            "auc_over_null": aucs[m] - null_aucs,
        }
    for model, named in draws.items():
        for name, values in named.items():
            low, high = _interval(values)
            results[model][f"{name}_ci_low"], results[model][f"{name}_ci_high"] = low, high
    return results


def pooled_within_session_auc(
    connection: duckdb.DuckDBPyConnection, levels: tuple[str, ...]
) -> dict[str, float]:
    """Per model, the within-session AUC over the levels' triggers that model_comparison
    evaluated, pairs taken within one session, level and direction."""
    rows = connection.execute(
        """
        with evaluated as (
            select scores.trigger_id
            from gold.model_scores as scores
            inner join gold.trigger_outcomes as outcomes using (trigger_id)
            inner join gold.trigger_signals as signals using (trigger_id)
            where outcomes.outcome is not null and signals.base_rate_prior is not null
                and list_contains($levels, scores.level_id)
            group by scores.trigger_id
            having count(scores.p_break) = count(*)
        )
        select scores.model, scores.dt::varchar || scores.level_id || scores.approach_dir,
            outcomes.outcome = 'BREAK', scores.p_break
        from gold.model_scores as scores
        inner join evaluated using (trigger_id)
        inner join gold.trigger_outcomes as outcomes using (trigger_id)
        order by scores.model, scores.trigger_id
        """,
        {"levels": list(levels)},
    ).fetchall()
    pooled = {}
    for model in MODELS:
        mine = [row[1:] for row in rows if row[0] == model]
        if mine:
            groups, labels, scores = (np.array(column) for column in zip(*mine, strict=True))
            pooled[model] = within_session_auc(groups, labels, scores.astype(np.float64))
    return pooled
