"""P(BREAK) for every trigger of a level and approach direction from models fitted on strictly
earlier sessions only, on exactly the folds retrieval uses (one fold per session):

- `null_retrieval`: retrieval's neighbours, their training labels permuted within each
  session (each session keeps its base rate; what is left is chance);
- `logistic`: L2-regularised logistic regression on the robust-scaled vectors, its penalty
  chosen by an inner walk-forward over the training sessions alone;
- `boosted_trees`: small, regularised gradient-boosted trees (scikit-learn's
  HistGradientBoosting), the number of trees chosen by early stopping on the later training
  sessions, then refitted on all of them;
- `retrieval`: the product's answer (retrieval.neighbours.walk_forward).

A session without enough earlier labelled triggers, or whose earlier triggers hold one class
only, gets NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from retrieval.evaluation import log_loss
from retrieval.neighbours import RetrievalSettings, TriggerSet, outcome_distribution, search_earlier
from retrieval.neighbours import walk_forward as retrieval_walk_forward
from retrieval.scaling import RobustScaling

MODELS = ("null_retrieval", "logistic", "boosted_trees", "retrieval")
LOGISTIC_PENALTIES = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths C
INNER_FOLDS = 3  # the last training sessions, each predicted from the ones before it
VALIDATION_SHARE = 0.25  # the later training sessions that stop the trees


@dataclass(frozen=True)
class ComparisonSettings:
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    seed: int = 0
    max_trees: int = 200


def walk_forward_p_break(
    triggers: TriggerSet, model: str, settings: ComparisonSettings
) -> np.ndarray:
    """P(BREAK) of each trigger under `model`, fitted on the sessions before its own."""
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
    labelled = triggers.outcomes != ""
    for session in np.unique(triggers.sessions):
        test = np.flatnonzero(triggers.sessions == session)
        train = np.flatnonzero((triggers.sessions < session) & labelled)
        breaks = triggers.outcomes[train] == "BREAK"
        if len(train) < settings.retrieval.min_neighbours or breaks.all() or not breaks.any():
            continue
        p_break[test] = fit_predict(triggers, train, test, session, settings)
    return p_break


def _null_retrieval(
    triggers: TriggerSet,
    train: np.ndarray,
    test: np.ndarray,
    session: np.datetime64,
    settings: ComparisonSettings,
) -> np.ndarray:
    """Retrieval's own neighbours, weighed as retrieval weighs them, with labels shuffled
    inside each training session (a seed per test session: re-runs give the same bits)."""
    rng = np.random.default_rng([settings.seed, int(session.astype("datetime64[D]").astype(int))])
    permuted = triggers.outcomes.copy()
    for earlier in np.unique(triggers.sessions[train]):
        rows = train[triggers.sessions[train] == earlier]
        permuted[rows] = rng.permutation(triggers.outcomes[rows])
    similarities, positions = search_earlier(
        triggers, triggers.vectors[test], session, settings.retrieval.k
    )
    return np.array(
        [
            outcome_distribution(similarity, permuted[found])[0]
            for similarity, found in zip(similarities, positions, strict=True)
        ]
    )


def _logistic(
    triggers: TriggerSet,
    train: np.ndarray,
    test: np.ndarray,
    _session: np.datetime64,
    _settings: ComparisonSettings,
) -> np.ndarray:
    penalty = _inner_walk_forward_penalty(triggers, train)
    scaling = RobustScaling.fit(triggers.vectors[train])
    model = LogisticRegression(C=penalty, max_iter=2000)
    model.fit(scaling.scale(triggers.vectors[train]), triggers.outcomes[train] == "BREAK")
    return model.predict_proba(scaling.scale(triggers.vectors[test]))[:, 1]


def _inner_walk_forward_penalty(triggers: TriggerSet, train: np.ndarray) -> float:
    """The C whose log loss is lowest when each of the last INNER_FOLDS training sessions is
    predicted from the training sessions before it (the outer test session never seen)."""
    sessions = np.unique(triggers.sessions[train])
    losses = dict.fromkeys(LOGISTIC_PENALTIES, 0.0)
    folds = 0
    for held_out in sessions[-INNER_FOLDS:]:
        inner_train = train[triggers.sessions[train] < held_out]
        inner_test = train[triggers.sessions[train] == held_out]
        breaks = triggers.outcomes[inner_train] == "BREAK"
        if len(inner_train) == 0 or breaks.all() or not breaks.any():
            continue
        scaling = RobustScaling.fit(triggers.vectors[inner_train])
        x_train = scaling.scale(triggers.vectors[inner_train])
        x_test = scaling.scale(triggers.vectors[inner_test])
        y_test = triggers.outcomes[inner_test] == "BREAK"
        for penalty in LOGISTIC_PENALTIES:
            model = LogisticRegression(C=penalty, max_iter=2000).fit(x_train, breaks)
            losses[penalty] += log_loss(y_test, model.predict_proba(x_test)[:, 1])
        folds += 1
    if folds == 0:
        return 1.0
    return min(LOGISTIC_PENALTIES, key=lambda penalty: (losses[penalty], -penalty))


def _boosted_trees(
    triggers: TriggerSet,
    train: np.ndarray,
    test: np.ndarray,
    _session: np.datetime64,
    settings: ComparisonSettings,
) -> np.ndarray:
    sessions = np.unique(triggers.sessions[train])
    # the later training sessions stop the trees (when there are two sessions or more)
    later_share = max(1, round(len(sessions) * VALIDATION_SHARE))
    cut = sessions[len(sessions) - later_share] if len(sessions) > 1 else None
    trees = settings.max_trees
    if cut is not None:
        early = train[triggers.sessions[train] < cut]
        later = train[triggers.sessions[train] >= cut]
        breaks = triggers.outcomes[early] == "BREAK"
        if breaks.any() and not breaks.all():
            model = _trees(settings.max_trees, settings.seed).fit(triggers.vectors[early], breaks)
            y_later = triggers.outcomes[later] == "BREAK"
            losses = [
                log_loss(y_later, p[:, 1])
                for p in model.staged_predict_proba(triggers.vectors[later])
            ]
            trees = int(np.argmin(losses)) + 1
    model = _trees(trees, settings.seed).fit(
        triggers.vectors[train], triggers.outcomes[train] == "BREAK"
    )
    return model.predict_proba(triggers.vectors[test])[:, 1]


def _trees(count: int, seed: int) -> HistGradientBoostingClassifier:
    """Small and regularised: a few hundred triggers per level and direction a year."""
    return HistGradientBoostingClassifier(
        max_iter=count,
        learning_rate=0.05,
        max_depth=3,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
