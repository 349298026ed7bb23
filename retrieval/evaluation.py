"""Walk-forward evaluation of P(BREAK): discrimination, calibration against two
baselines known at the time (the earlier sessions' base rate and their base rate at the same
time of day), top-decile lift and a reliability table, with intervals from a bootstrap that
resamples whole sessions (triggers of one session are not independent)."""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

PROBABILITY_FLOOR = 1e-3


@dataclass(frozen=True)
class EvaluationSettings:
    time_of_day_minutes: int = 30
    time_of_day_prior_weight: float = 5.0
    bootstrap_samples: int = 1000
    reliability_bins: int = 5
    seed: int = 0


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; NaN without both classes."""
    labels = labels.astype(np.bool_)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    concordant = concordant_pairs(labels, scores)
    return concordant / (positives * negatives) if positives and negatives else float("nan")


def concordant_pairs(labels: np.ndarray, scores: np.ndarray) -> float:
    """BREAK/non-BREAK pairs whose BREAK scores higher, ties counted half (the AUC's
    numerator)."""
    labels = labels.astype(np.bool_)
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("AUC scores must be finite")
    return float(_concordant_pairs(labels, scores, np.argsort(scores), int(labels.sum())))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((probabilities - labels) ** 2))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    if labels.mean() == 0:
        return float("nan")
    top = np.argsort(-scores, kind="mergesort")[: max(1, len(scores) // 10)]
    return float(labels[top].mean() / labels.mean())


@dataclass(frozen=True)
class SessionBootstrap:
    """Resamples of whole sessions: `chosen[b]` the sessions (positions in np.unique order)
    of resample b, drawn with replacement; each session's rows `rows[offsets[i]:offsets[i +
    1]]`, so a resample's rows are its sessions' rows one session after the other."""

    chosen: np.ndarray  # int64 (samples, sessions)
    offsets: np.ndarray  # int64 (sessions + 1)
    rows: np.ndarray  # int64

    @classmethod
    def draw(cls, sessions: np.ndarray, samples: int, rng: np.random.Generator) -> SessionBootstrap:
        unique = np.unique(sessions)
        members = [np.flatnonzero(sessions == session) for session in unique]
        # one draw per resample: the stream every earlier report was computed from
        chosen = np.array(
            [rng.integers(0, len(unique), len(unique)) for _ in range(samples)], dtype=np.int64
        ).reshape(samples, len(unique))
        sizes = np.array([len(rows) for rows in members], dtype=np.int64)
        return cls(
            chosen=chosen,
            offsets=np.r_[0, np.cumsum(sizes)].astype(np.int64),
            rows=np.concatenate(members).astype(np.int64) if members else np.empty(0, np.int64),
        )

    def sample_rows(self, sample: int) -> np.ndarray:
        return np.concatenate(
            [self.rows[self.offsets[i] : self.offsets[i + 1]] for i in self.chosen[sample]]
        )

    def ranking_metrics(
        self, labels: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """auc(labels, s) and top_decile_lift(labels, s) of every resample, for each row of
        `scores` (models x triggers): (models x samples) each, the same bits as those
        functions give on the resample's rows (a lift's counts are exact too)."""
        if not np.isfinite(scores).all():
            raise ValueError("bootstrap scores must be finite")
        return _resampled_ranking(
            labels.astype(np.bool_), scores.astype(np.float64), self.offsets, self.rows, self.chosen
        )


@nb.njit(cache=True, nogil=True)
def _resampled_ranking(labels, scores, offsets, rows, chosen):
    samples, sessions = chosen.shape
    models = scores.shape[0]
    aucs = np.empty((models, samples))
    lifts = np.empty((models, samples))
    for b in range(samples):
        size = 0
        for j in range(sessions):
            size += offsets[chosen[b, j] + 1] - offsets[chosen[b, j]]
        picked = np.empty(size, np.int64)
        position = 0
        for j in range(sessions):
            for r in range(offsets[chosen[b, j]], offsets[chosen[b, j] + 1]):
                picked[position] = rows[r]
                position += 1
        sample_labels = labels[picked]
        positives = 0
        for i in range(size):
            positives += sample_labels[i]
        negatives = size - positives
        top = max(1, size // 10)
        for m in range(models):
            values = scores[m][picked]
            order = np.argsort(values)
            aucs[m, b] = _ordered_auc(sample_labels, values, order, positives, negatives)
            if positives == 0:
                lifts[m, b] = np.nan
            else:
                threshold = values[order[size - top]]  # the top-th largest
                hits = _top_hits(sample_labels, values, threshold, top)
                lifts[m, b] = (hits / top) / (positives / size)
    return aucs, lifts


@nb.njit(cache=True, nogil=True)
def _top_hits(labels, values, threshold, top):
    """The positives among the first `top` of a stable descending order of the values, as
    top_decile_lift takes them: every value above the top-th largest (`threshold`), then, of
    the values equal to it, the earliest rows (no second sort)."""
    hits = 0
    taken = 0
    for i in range(len(values)):
        if values[i] > threshold:
            hits += labels[i]
            taken += 1
    for i in range(len(values)):
        if taken == top:
            break
        if values[i] == threshold:
            hits += labels[i]
            taken += 1
    return hits


def column_aucs(labels: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """auc(labels, column) of each column of `columns` (rows x columns), the same bits."""
    if not np.isfinite(columns).all():
        raise ValueError("AUC columns must be finite")
    labels = labels.astype(np.bool_)
    return _column_aucs(labels, np.asarray(columns, dtype=np.float64), int(labels.sum()))


@nb.njit(cache=True, nogil=True)
def _column_aucs(labels, columns, positives):
    aucs = np.empty(columns.shape[1])
    for j in range(columns.shape[1]):
        aucs[j] = _auc(
            labels, np.ascontiguousarray(columns[:, j]), positives, len(labels) - positives
        )
    return aucs


@nb.njit(cache=True, nogil=True)
def _auc(labels, values, positives, negatives):
    return _ordered_auc(labels, values, np.argsort(values), positives, negatives)


@nb.njit(cache=True, nogil=True)
def _ordered_auc(labels, values, order, positives, negatives):
    """The AUC from the concordant pairs (_concordant_pairs); NaN without both classes."""
    if positives == 0 or negatives == 0:
        return np.nan
    return _concordant_pairs(labels, values, order, positives) / (positives * negatives)


@nb.njit(cache=True, nogil=True)
def _concordant_pairs(labels, values, order, positives):
    """Positive/negative pairs ordered by value, ties half: the positives' midrank sum (ties
    share the mean of their ranks) less its least, exact in float64 whatever the order of
    summing (half-integers). `order` sorts the values ascending."""
    rank_sum = 0.0
    start = 0
    n = len(values)
    while start < n:
        end = start + 1
        while end < n and values[order[end]] == values[order[start]]:
            end += 1
        in_group = 0
        for i in range(start, end):
            in_group += labels[order[i]]
        rank_sum += (start + (end - start - 1) / 2 + 1) * in_group
        start = end
    return rank_sum - positives * (positives + 1) / 2


def walk_forward_baselines(
    sessions: np.ndarray,
    minutes_since_open: np.ndarray,
    breaks: np.ndarray,
    labelled: np.ndarray,
    settings: EvaluationSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Per trigger, from the labelled triggers of earlier sessions only: the BREAK rate, and
    the BREAK rate in the same time-of-day bucket shrunk toward it (prior weight m):
    (breaks in bucket + m base) / (triggers in bucket + m). NaN without earlier sessions."""
    buckets = (minutes_since_open // settings.time_of_day_minutes).astype(np.int64)
    base = np.full(len(sessions), np.nan)
    time_of_day = np.full(len(sessions), np.nan)
    for session in np.unique(sessions):
        earlier = (sessions < session) & labelled
        if not earlier.any():
            continue
        rate = breaks[earlier].mean()
        today = sessions == session
        base[today] = rate
        for bucket in np.unique(buckets[today]):
            same = earlier & (buckets == bucket)
            m = settings.time_of_day_prior_weight
            time_of_day[today & (buckets == bucket)] = (breaks[same].sum() + m * rate) / (
                same.sum() + m
            )
    return base, time_of_day


@dataclass
class Evaluation:
    metrics: dict[str, float]
    reliability: list[dict[str, float]]


def _metrics(
    labels: np.ndarray, p: np.ndarray, base: np.ndarray, time_of_day: np.ndarray
) -> dict[str, float]:
    brier_model = brier(labels, p)
    brier_base = brier(labels, base)
    return {
        "auc": auc(labels, p),
        "brier": brier_model,
        "brier_base_rate": brier_base,
        "brier_time_of_day": brier(labels, time_of_day),
        "brier_skill": 1 - brier_model / brier_base if brier_base > 0 else float("nan"),
        "log_loss": log_loss(labels, p),
        "log_loss_base_rate": log_loss(labels, base),
        "log_loss_time_of_day": log_loss(labels, time_of_day),
        "top_decile_lift": top_decile_lift(labels, p),
    }


def reliability_table(
    labels: np.ndarray, p_break: np.ndarray, bin_count: int
) -> list[dict[str, float]]:
    """Triggers, mean P(BREAK) and BREAK rate per equal bin of [0, 1]; empty bins left out."""
    labels = labels.astype(float)
    edges = np.linspace(0.0, 1.0, bin_count + 1)
    bins = np.clip(np.digitize(p_break, edges[1:-1]), 0, bin_count - 1)

    def mean(values: np.ndarray) -> float:
        # within the values' range, as the exact mean is (six 0.4s average 0.39999999999999997)
        return float(np.clip(values.mean(), values.min(), values.max()))

    return [
        {
            "bin": int(b),
            "p_low": float(edges[b]),
            "p_high": float(edges[b + 1]),
            "n": int((bins == b).sum()),
            "mean_p_break": mean(p_break[bins == b]),
            "break_rate": float(labels[bins == b].mean()),
        }
        for b in range(bin_count)
        if (bins == b).any()
    ]


def evaluate(
    sessions: np.ndarray,
    labels: np.ndarray,
    p_break: np.ndarray,
    base_rate: np.ndarray,
    time_of_day_rate: np.ndarray,
    settings: EvaluationSettings,
) -> Evaluation:
    """Metrics of the evaluated triggers (each with a walk-forward P(BREAK) and baselines);
    `<metric>_ci_low/high`: 2.5% and 97.5% of the session bootstrap."""
    labels = labels.astype(float)
    metrics = _metrics(labels, p_break, base_rate, time_of_day_rate)
    metrics["n"] = len(labels)
    metrics["sessions"] = len(np.unique(sessions))
    metrics["base_rate"] = float(labels.mean()) if len(labels) else float("nan")
    bootstrap = SessionBootstrap.draw(
        sessions, settings.bootstrap_samples, np.random.default_rng(settings.seed)
    )
    [aucs], [lifts] = bootstrap.ranking_metrics(labels, p_break[np.newaxis])
    skills = []
    for sample in range(settings.bootstrap_samples):
        rows = bootstrap.sample_rows(sample)
        brier_model, brier_base = (
            brier(labels[rows], p_break[rows]),
            brier(labels[rows], base_rate[rows]),
        )
        skills.append(1 - brier_model / brier_base if brier_base > 0 else float("nan"))
    draws = {"auc": aucs, "brier_skill": skills, "top_decile_lift": lifts}
    for name, values in draws.items():
        finite = np.asarray(values)[np.isfinite(values)]
        low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
        metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = float(low), float(high)
    return Evaluation(
        metrics=metrics, reliability=reliability_table(labels, p_break, settings.reliability_bins)
    )
