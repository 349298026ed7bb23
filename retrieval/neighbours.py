"""Walk-forward nearest neighbours: for every trigger of a level and approach
direction, the k most similar triggers of strictly earlier sessions, under a metric fitted on
those sessions only, and the similarity-weighted distribution of what happened after them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np

from retrieval.metric import SetupMetric

OUTCOMES = ("BREAK", "REJECT", "CHOP")


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 15
    min_neighbours: int = 5


@dataclass
class TriggerSet:
    """The triggers of one level and approach direction, in time order."""

    trigger_ids: np.ndarray  # str
    sessions: np.ndarray  # datetime64[D]
    vectors: np.ndarray  # float64, one row per trigger
    outcomes: np.ndarray  # str, BREAK / REJECT / CHOP / WHIPSAW, "" when unknown

    def __post_init__(self) -> None:
        if not np.all(self.sessions[:-1] <= self.sessions[1:]):
            raise ValueError("triggers must come in time order")


@dataclass
class Signals:
    """One entry per trigger of a TriggerSet; probabilities NaN without enough neighbours."""

    neighbour_count: np.ndarray
    p_break: np.ndarray
    p_reject: np.ndarray
    p_chop: np.ndarray
    similarity_mean: np.ndarray
    similarity_std: np.ndarray
    similarity_max: np.ndarray
    similarity_min: np.ndarray
    training_sessions: np.ndarray
    training_triggers: np.ndarray
    neighbour_ids: list[list[str]]
    neighbour_similarities: list[list[float]]


def exact_inner_product_index(scaled: np.ndarray) -> faiss.IndexFlatIP:
    """Exact search: a whole session's triggers searched at once are matrix products (BLAS),
    cheap enough for the walk-forward evaluation at any size; one live query at a time over a
    large index goes through `retrieval.index_store.live_search_index`."""
    index = faiss.IndexFlatIP(scaled.shape[1])
    index.add(scaled)
    return index


def outcome_distribution(
    similarities: np.ndarray, outcomes: np.ndarray
) -> tuple[float, float, float]:
    """Weights (1 + cosine) / 2 in [0, 1]; WHIPSAW counts as CHOP (neither side won)."""
    weights = (1.0 + similarities) / 2.0
    total = weights.sum()
    p_break = float(weights[outcomes == "BREAK"].sum() / total)
    p_reject = float(weights[outcomes == "REJECT"].sum() / total)
    p_chop = float(weights[(outcomes == "CHOP") | (outcomes == "WHIPSAW")].sum() / total)
    return p_break, p_reject, p_chop


def search_earlier(
    triggers: TriggerSet, queries: np.ndarray, session: np.datetime64, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Similarities and positions in `triggers` of the k nearest labelled triggers of sessions
    before `session`, for each query vector, under a metric fitted on those sessions alone."""
    train = np.flatnonzero((triggers.sessions < session) & (triggers.outcomes != ""))
    if len(train) == 0:
        empty = np.empty((len(queries), 0))
        return empty, empty.astype(np.int64)
    metric = SetupMetric.fit(triggers.vectors[train], triggers.outcomes[train])
    index = exact_inner_product_index(metric.transform(triggers.vectors[train]))
    similarities, found = index.search(metric.transform(queries), min(k, len(train)))
    return similarities.astype(np.float64), train[found]


def empty_signals(n: int) -> Signals:
    nan = np.full(n, np.nan)
    return Signals(
        neighbour_count=np.zeros(n, dtype=np.int64),
        p_break=nan.copy(),
        p_reject=nan.copy(),
        p_chop=nan.copy(),
        similarity_mean=nan.copy(),
        similarity_std=nan.copy(),
        similarity_max=nan.copy(),
        similarity_min=nan.copy(),
        training_sessions=np.zeros(n, dtype=np.int64),
        training_triggers=np.zeros(n, dtype=np.int64),
        neighbour_ids=[[] for _ in range(n)],
        neighbour_similarities=[[] for _ in range(n)],
    )


def set_neighbours(
    signals: Signals,
    row: int,
    similarity: np.ndarray,
    neighbour_outcomes: np.ndarray,
    neighbour_ids: np.ndarray,
) -> None:
    """Row `row` of `signals` from its neighbours' similarities, outcomes and trigger ids."""
    p_break, p_reject, p_chop = outcome_distribution(similarity, neighbour_outcomes)
    signals.neighbour_count[row] = len(neighbour_ids)
    signals.p_break[row], signals.p_reject[row], signals.p_chop[row] = p_break, p_reject, p_chop
    signals.similarity_mean[row] = similarity.mean()
    signals.similarity_std[row] = similarity.std()
    signals.similarity_max[row] = similarity.max()
    signals.similarity_min[row] = similarity.min()
    signals.neighbour_ids[row] = [str(t) for t in neighbour_ids]
    signals.neighbour_similarities[row] = similarity.tolist()


def walk_forward(
    triggers: TriggerSet,
    settings: RetrievalSettings,
    sessions: Iterable[np.datetime64] | None = None,
) -> Signals:
    """Each trigger's neighbours among the labelled triggers of earlier sessions: of every
    session, or of `sessions` only (the other rows empty)."""
    signals = empty_signals(len(triggers.trigger_ids))
    labelled = triggers.outcomes != ""
    for session in np.unique(triggers.sessions) if sessions is None else sessions:
        test = np.flatnonzero(triggers.sessions == session)
        train = (triggers.sessions < session) & labelled
        signals.training_triggers[test] = train.sum()
        signals.training_sessions[test] = len(np.unique(triggers.sessions[train]))
        if train.sum() < settings.min_neighbours:
            continue
        found_similarities, found_positions = search_earlier(
            triggers, triggers.vectors[test], session, settings.k
        )
        for row, neighbours, similarity in zip(
            test, found_positions, found_similarities, strict=True
        ):
            set_neighbours(
                signals,
                row,
                similarity,
                triggers.outcomes[neighbours],
                triggers.trigger_ids[neighbours],
            )
    return signals
