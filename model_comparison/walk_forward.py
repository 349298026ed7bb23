"""P(BREAK) for every trigger of a level and approach direction from models fitted on strictly
earlier sessions only, on exactly the folds retrieval uses (one fold per session):

- `null_retrieval`: retrieval's neighbours, their training labels permuted within each
  session (each session keeps its base rate; what is left is chance);
- `logistic`: L2-regularised logistic regression on the robust-scaled vectors, its penalty
  chosen by an inner walk-forward over the training sessions alone;
- `boosted_trees`: small, regularised gradient-boosted trees (LightGBM), the number of trees
  chosen by early stopping on the later training sessions, then refitted on all of them;
- `retrieval`: the product's answer (retrieval.neighbours.walk_forward).

A session without enough earlier labelled triggers, or whose training triggers hold one class
only, gets NaN. The fitted models train on the last `training_sessions` sessions before the
test session (a stated cap: each new session costs a bounded fit); retrieval and its null search
every earlier session.

Each fold (a test session of a level and direction) carries a fingerprint of everything its
scores read: the code, the settings, its own triggers' vectors, and every earlier session's
labelled triggers. A fold whose fingerprint a table already holds need not be scored again: a
new session costs its own fold, not the history's.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

import lightgbm
import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import retrieval.evaluation
import retrieval.folds
import retrieval.metric
import retrieval.neighbours
import retrieval.scaling
from model_comparison.metrics import MODELS
from retrieval.evaluation import log_loss
from retrieval.folds import code_digest as retrieval_code_digest
from retrieval.folds import fold_fingerprints
from retrieval.neighbours import RetrievalSettings, TriggerSet, outcome_distribution, search_earlier
from retrieval.neighbours import walk_forward as retrieval_walk_forward
from retrieval.scaling import RobustScaling

LOGISTIC_PENALTIES = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths C
INNER_FOLDS = 3  # the last training sessions, each predicted from the ones before it
VALIDATION_SHARE = 0.25  # the later training sessions that stop the trees
# LightGBM fits (and predicts) one at a time in a process: two at once in dbt's two threads
# gave other trees on the same data (measured: three runs, three different gain tables)
_LIGHTGBM = threading.Lock()
# model_walk_forward_scores and model_walk_forward_tree_gain ask for the same fits in one dbt
# process: each is fitted once, keyed by everything the fit reads (see _fit_key)
_FITTED_TREES: OrderedDict[bytes, lightgbm.Booster] = OrderedDict()
_FITTED_TREES_KEPT = 4096  # a year of folds for every level and direction, a few MB


@dataclass(frozen=True)
class ComparisonSettings:
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    seed: int = 0
    max_trees: int = 200
    training_sessions: int = 120  # the fitted models' training window, in sessions


@dataclass(frozen=True)
class Fold:
    """A test session of a trigger set and the rows its models may read."""

    session: np.datetime64
    test: np.ndarray  # the session's rows
    earlier: np.ndarray  # labelled rows of every earlier session: retrieval's neighbours
    train: np.ndarray  # labelled rows of the last `training_sessions` of them: the fits'
    fingerprint: str  # what its scores read (see walk_forward_folds)
    scored: bool  # enough training rows, of both classes


def walk_forward_folds(triggers: TriggerSet, settings: ComparisonSettings) -> list[Fold]:
    """One fold per session, in order. A fold is scored when its session has at least
    `min_neighbours` labelled triggers before it and its training rows hold both classes.
    Its fingerprint (retrieval.folds) digests the code, the settings, the session's dates,
    trigger ids and vectors, and every earlier session's labelled ids, vectors and outcomes:
    equal fingerprints, equal scores."""
    labelled = triggers.outcomes != ""
    sessions = np.unique(triggers.sessions)
    fingerprints = fold_fingerprints(
        triggers.sessions,
        labelled,
        salt=code_digest() + repr(settings).encode(),
        test_parts=(triggers.sessions, triggers.trigger_ids, triggers.vectors),
        earlier_parts=(triggers.trigger_ids, triggers.vectors, triggers.outcomes),
    )
    folds = []
    for position, fold in enumerate(fingerprints):
        earlier = np.flatnonzero((triggers.sessions < fold.session) & labelled)
        window = sessions[max(0, position - settings.training_sessions)]
        train = earlier[triggers.sessions[earlier] >= window]
        breaks = triggers.outcomes[train] == "BREAK"
        folds.append(
            Fold(
                session=fold.session,
                test=fold.test,
                earlier=earlier,
                train=train,
                fingerprint=fold.fingerprint,
                scored=len(earlier) >= settings.retrieval.min_neighbours
                and bool(breaks.any())
                and not bool(breaks.all()),
            )
        )
    return folds


@cache
def code_digest() -> bytes:
    """The modules a fold's scores come from and the libraries they call."""
    return retrieval_code_digest(
        (
            sys.modules[__name__],
            retrieval.evaluation,
            retrieval.folds,
            retrieval.metric,
            retrieval.neighbours,
            retrieval.scaling,
        ),
        ("lightgbm", "scikit-learn", "faiss-cpu", "numpy"),
    )


def walk_forward_p_break(
    triggers: TriggerSet,
    model: str,
    settings: ComparisonSettings,
    folds: Iterable[Fold] | None = None,
) -> np.ndarray:
    """P(BREAK) of each trigger under `model`, fitted on the sessions before its own: on
    every scored fold, or on `folds` only (the other rows NaN)."""
    if model == "retrieval":
        return retrieval_walk_forward(triggers, settings.retrieval).p_break
    fit_predict = {
        "null_retrieval": _null_retrieval,
        "logistic": _logistic,
        "boosted_trees": _boosted_trees,
    }.get(model)
    if fit_predict is None:
        raise ValueError(f"unknown model {model!r}: one of {', '.join(MODELS)}")
    p_break = np.full(len(triggers.trigger_ids), np.nan)
    memo: dict = {}  # what one fold computes and a later fold can reuse
    # tiny fits: BLAS threads cost more than they save, and one thread is reproducible
    with threadpool_limits(limits=1):
        for fold in walk_forward_folds(triggers, settings) if folds is None else folds:
            if fold.scored:
                p_break[fold.test] = fit_predict(triggers, fold, settings, memo)
    return p_break


def _null_retrieval(
    triggers: TriggerSet, fold: Fold, settings: ComparisonSettings, _memo: dict
) -> np.ndarray:
    """Retrieval's own neighbours, weighed as retrieval weighs them, with labels shuffled
    inside each earlier session (a seed per test session: re-runs give the same bits)."""
    session = fold.session
    rng = np.random.default_rng([settings.seed, int(session.astype("datetime64[D]").astype(int))])
    permuted = triggers.outcomes.copy()
    for earlier in np.unique(triggers.sessions[fold.earlier]):
        rows = fold.earlier[triggers.sessions[fold.earlier] == earlier]
        permuted[rows] = rng.permutation(triggers.outcomes[rows])
    similarities, positions = search_earlier(
        triggers, triggers.vectors[fold.test], session, settings.retrieval.k
    )
    return np.array(
        [
            outcome_distribution(similarity, permuted[found])[0]
            for similarity, found in zip(similarities, positions, strict=True)
        ]
    )


def _logistic(
    triggers: TriggerSet, fold: Fold, _settings: ComparisonSettings, memo: dict
) -> np.ndarray:
    train, test = fold.train, fold.test
    penalty = _inner_walk_forward_penalty(triggers, train, memo)
    scaling = RobustScaling.fit(triggers.vectors[train])
    model = _logistic_regression(penalty).fit(
        scaling.scale(triggers.vectors[train]), triggers.outcomes[train] == "BREAK"
    )
    return model.predict_proba(scaling.scale(triggers.vectors[test]))[:, 1]


def _logistic_regression(penalty: float) -> LogisticRegression:
    # Newton steps on the exact Hessian: a few iterations at this size, and no intercept penalty
    return LogisticRegression(C=penalty, solver="newton-cholesky", max_iter=100)


def _inner_walk_forward_penalty(triggers: TriggerSet, train: np.ndarray, memo: dict) -> float:
    """The C whose log loss is lowest when each of the last INNER_FOLDS training sessions is
    predicted from the training sessions before it (the outer test session never seen)."""
    sessions = np.unique(triggers.sessions[train])
    total = np.zeros(len(LOGISTIC_PENALTIES))
    folds = 0
    for held_out in sessions[-INNER_FOLDS:]:
        # the training window's sessions before it train it, whichever outer fold asks
        key = (sessions[0], held_out)
        if key not in memo:
            memo[key] = _held_out_losses(triggers, train, held_out)
        if memo[key] is not None:
            total += memo[key]
            folds += 1
    if folds == 0:
        return 1.0
    # the strongest regularisation among equal losses
    return LOGISTIC_PENALTIES[int(np.argmin(total))]


def _held_out_losses(
    triggers: TriggerSet, train: np.ndarray, held_out: np.datetime64
) -> np.ndarray | None:
    """Log loss of each penalty on the held-out session fitted on the sessions before it;
    None when those hold one class only."""
    inner_train = train[triggers.sessions[train] < held_out]
    inner_test = train[triggers.sessions[train] == held_out]
    breaks = triggers.outcomes[inner_train] == "BREAK"
    if len(inner_train) == 0 or breaks.all() or not breaks.any():
        return None
    scaling = RobustScaling.fit(triggers.vectors[inner_train])
    x_train = scaling.scale(triggers.vectors[inner_train])
    x_test = scaling.scale(triggers.vectors[inner_test])
    y_test = triggers.outcomes[inner_test] == "BREAK"
    return np.array(
        [
            log_loss(
                y_test,
                _logistic_regression(penalty).fit(x_train, breaks).predict_proba(x_test)[:, 1],
            )
            for penalty in LOGISTIC_PENALTIES
        ]
    )


def _boosted_trees(
    triggers: TriggerSet, fold: Fold, settings: ComparisonSettings, _memo: dict
) -> np.ndarray:
    with _LIGHTGBM:
        return _fitted_trees(triggers, fold.train, settings).predict(triggers.vectors[fold.test])


def fold_gain_shares(
    triggers: TriggerSet, fold: Fold, settings: ComparisonSettings
) -> np.ndarray | None:
    """Each feature's share of the split gain of the fold's trees (boosted_trees' fit: the
    same seed gives the same trees); None when they split nowhere."""
    with _LIGHTGBM:
        gain = _fitted_trees(triggers, fold.train, settings).feature_importance("gain")
    return gain / gain.sum() if gain.sum() > 0 else None


def _fitted_trees(
    triggers: TriggerSet, train: np.ndarray, settings: ComparisonSettings
) -> lightgbm.Booster:
    """The trees of _fit_boosted_trees, fitted once per input (the caller holds _LIGHTGBM)."""
    key = _fit_key(triggers, train, settings)
    booster = _FITTED_TREES.get(key)
    if booster is None:
        booster = _fit_boosted_trees(triggers, train, settings)
        _FITTED_TREES[key] = booster
        if len(_FITTED_TREES) > _FITTED_TREES_KEPT:
            _FITTED_TREES.popitem(last=False)
    else:
        _FITTED_TREES.move_to_end(key)
    return booster


def _fit_key(triggers: TriggerSet, train: np.ndarray, settings: ComparisonSettings) -> bytes:
    """A digest of what _fit_boosted_trees reads: the training rows' vectors, labels and
    sessions (the early-stopping split), the seed and the most trees."""
    digest = hashlib.blake2b(digest_size=32)
    for part in (
        triggers.vectors[train],
        (triggers.outcomes[train] == "BREAK").astype(np.uint8),
        triggers.sessions[train].astype("datetime64[D]").astype(np.int64),
        np.array([settings.seed, settings.max_trees], dtype=np.int64),
    ):
        digest.update(str(part.dtype).encode() + str(part.shape).encode())
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.digest()


def _fit_boosted_trees(
    triggers: TriggerSet, train: np.ndarray, settings: ComparisonSettings
) -> lightgbm.Booster:
    """Trees fitted on the training rows, as many as minimise the log loss of the later
    training sessions when fitted on the earlier ones (all of them with one session). LightGBM
    runs one fit at a time: the caller holds _LIGHTGBM."""
    sessions = np.unique(triggers.sessions[train])
    trees = settings.max_trees
    if len(sessions) > 1:
        cut = sessions[len(sessions) - max(1, round(len(sessions) * VALIDATION_SHARE))]
        early = train[triggers.sessions[train] < cut]
        later = train[triggers.sessions[train] >= cut]
        breaks = triggers.outcomes[early] == "BREAK"
        if breaks.any() and not breaks.all():
            history: dict = {}
            lightgbm.train(
                _tree_parameters(settings.seed),
                _dataset(triggers, early),
                num_boost_round=settings.max_trees,
                valid_sets=[_dataset(triggers, later)],
                valid_names=["later"],
                callbacks=[lightgbm.record_evaluation(history)],
            )
            trees = int(np.argmin(history["later"]["binary_logloss"])) + 1
    return lightgbm.train(
        _tree_parameters(settings.seed), _dataset(triggers, train), num_boost_round=trees
    )


def _dataset(triggers: TriggerSet, rows: np.ndarray) -> lightgbm.Dataset:
    return lightgbm.Dataset(
        triggers.vectors[rows],
        label=(triggers.outcomes[rows] == "BREAK").astype(np.float64),
        params={"verbosity": -1, "max_bin": 63},
        free_raw_data=True,
    )


def _tree_parameters(seed: int) -> dict:
    """Small and regularised: a few hundred triggers per level and direction a year. One
    thread and deterministic: re-runs give the same bits."""
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": 0.05,
        "num_leaves": 8,
        "max_depth": 3,
        "min_data_in_leaf": 20,
        "lambda_l2": 1.0,
        "max_bin": 63,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }
