"""How often each condition and each pattern held before the triggers, and what followed.

For every group of triggers (level kind x level x approach direction, each also pooled as
`ALL`, x condition window) and every member of it (all its triggers; each condition held or
not; each of the 16 patterns): n, sessions, the outcome shares, the lift of the BREAK share
over the walk-forward base rate, session-clustered bootstrap intervals, and whether the
member separates BREAK from REJECT beyond chance:

- separation: the BREAK share among the member's BREAK and REJECT triggers minus that share
  among the group's other BREAK and REJECT triggers;
- p-value: outcomes permuted within each session (each session keeps its outcomes, so a
  session's base rate cannot pass for a pattern), two-sided, (1 + as extreme) / (1 + draws);
- Holm's adjustment over the family: every member tested (conditions held and patterns with
  at least `min_triggers` in and out of them) in every group of a level kind and window, their
  count stated: a lucky pattern among many levels and patterns is not a discovery.

Triggers count when their outcome is known and their book was valid through the window."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product

import numba as nb
import numpy as np
import pyarrow as pa

CONDITIONS = ("c1", "c2", "c3", "c4")
PATTERNS = tuple("".join(bits) for bits in product("01", repeat=4))
OUTCOMES = ("BREAK", "REJECT", "CHOP", "WHIPSAW")
POOLED = "ALL"

SCHEMA = pa.schema(
    [
        ("level_kind", pa.string()),
        ("level_id", pa.string()),
        ("approach_dir", pa.string()),
        ("window_seconds", pa.int32()),
        ("grouping", pa.string()),
        ("member", pa.string()),
        ("held", pa.bool_()),
        ("n", pa.int64()),
        ("sessions", pa.int64()),
        ("break_share", pa.float64()),
        ("reject_share", pa.float64()),
        ("chop_share", pa.float64()),
        ("whipsaw_share", pa.float64()),
        ("break_share_ci_low", pa.float64()),
        ("break_share_ci_high", pa.float64()),
        ("reject_share_ci_low", pa.float64()),
        ("reject_share_ci_high", pa.float64()),
        ("base_rate", pa.float64()),
        ("lift", pa.float64()),
        ("lift_ci_low", pa.float64()),
        ("lift_ci_high", pa.float64()),
        ("separation", pa.float64()),
        ("p_value", pa.float64()),
        ("p_value_holm", pa.float64()),
        ("tests_in_family", pa.int64()),
        ("is_significant", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class EvidenceSettings:
    windows: tuple[int, ...]
    bootstrap_samples: int
    permutations: int
    min_triggers: int
    alpha: float
    seed: int


@dataclass(frozen=True)
class Triggers:
    """One family's labelled triggers, in session order."""

    sessions: np.ndarray  # datetime64[D]
    outcomes: np.ndarray  # str
    base_rates: np.ndarray  # float, NaN without earlier sessions
    flags: dict[str, np.ndarray]  # condition -> bool
    patterns: np.ndarray  # str


def walk_forward_base_rates(
    sessions: np.ndarray, groups: np.ndarray, outcomes: np.ndarray
) -> np.ndarray:
    """Each trigger's BREAK share among the labelled triggers of its group (level kind, level,
    direction) in strictly earlier sessions; NaN when there are none."""
    rates = np.full(len(sessions), np.nan)
    for group in np.unique(groups):
        mine = np.flatnonzero(groups == group)
        days, day_of = np.unique(sessions[mine], return_inverse=True)
        counts = np.bincount(day_of, minlength=len(days))
        breaks = np.bincount(day_of, weights=outcomes[mine] == "BREAK", minlength=len(days))
        earlier_counts = np.r_[0, np.cumsum(counts)[:-1]]
        earlier_breaks = np.r_[0.0, np.cumsum(breaks)[:-1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            prior = np.where(earlier_counts > 0, earlier_breaks / earlier_counts, np.nan)
        rates[mine] = prior[day_of]
    return rates


def condition_outcomes(conditions: pa.Table, settings: EvidenceSettings) -> pa.Table:
    """`conditions`: trigger_conditions joined with each trigger's outcome (`outcome`)."""
    columns = {
        name: conditions.column(name).to_numpy(zero_copy_only=False)
        for name in conditions.column_names
    }
    labelled = np.array([o is not None for o in columns["outcome"]], dtype=bool)
    columns = {name: values[labelled] for name, values in columns.items()}
    sessions = columns["dt"].astype("datetime64[D]")
    outcomes = columns["outcome"].astype(str)
    groups = np.char.add(
        np.char.add(columns["level_kind"].astype(str), "|"),
        np.char.add(
            np.char.add(columns["level_id"].astype(str), "|"), columns["approach_dir"].astype(str)
        ),
    )
    base_rates = walk_forward_base_rates(sessions, groups, outcomes)
    rows: list[dict[str, object]] = []
    tested: dict[tuple[str, int], list[int]] = {}  # family -> its rows with a p-value
    for kind, level, direction, mask in _families(columns):
        for window in settings.windows:
            valid = mask & columns[f"window_valid_{window}s"].astype(bool)
            order = np.flatnonzero(valid)
            order = order[np.argsort(sessions[order], kind="stable")]
            triggers = Triggers(
                sessions=sessions[order],
                outcomes=outcomes[order],
                base_rates=base_rates[order],
                flags={c: columns[f"{c}_{window}s"][order].astype(bool) for c in CONDITIONS},
                patterns=columns[f"pattern_{window}s"][order].astype(str),
            )
            family = {
                "level_kind": kind,
                "level_id": level,
                "approach_dir": direction,
                "window_seconds": window,
            }
            for row in _group_rows(triggers, settings, family):
                if row.pop("tested"):
                    tested.setdefault((kind, window), []).append(len(rows))
                rows.append({**family, **row})
    for positions in tested.values():
        adjusted = _holm([rows[i]["p_value"] for i in positions])
        for i, value in zip(positions, adjusted, strict=True):
            rows[i].update(
                p_value_holm=value,
                tests_in_family=len(positions),
                is_significant=bool(value < settings.alpha),
            )
    keys = ("level_kind", "level_id", "approach_dir", "window_seconds", "member")
    held_rows = {tuple(row[k] for k in keys): row for row in rows if row["held"]}
    for row in rows:
        # a condition not held: the test is the condition's own (its held row's)
        held = held_rows.get(tuple(row[k] for k in keys))
        if row["grouping"] == "condition" and not row["held"] and held is not None:
            for key in ("p_value_holm", "tests_in_family", "is_significant"):
                if key in held:
                    row[key] = held[key]
    for row in rows:
        row.setdefault(
            "tests_in_family", len(tested.get((row["level_kind"], row["window_seconds"]), ()))
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _families(columns: dict[str, np.ndarray]) -> Iterator[tuple[str, str, str, np.ndarray]]:
    kinds = columns["level_kind"].astype(str)
    levels = columns["level_id"].astype(str)
    directions = columns["approach_dir"].astype(str)
    for kind in sorted(set(kinds)):
        for level in [*sorted(set(levels)), POOLED]:
            for direction in ("UP", "DOWN", POOLED):
                mask = kinds == kind
                if level != POOLED:
                    mask &= levels == level
                if direction != POOLED:
                    mask &= directions == direction
                if mask.any():
                    yield kind, level, direction, mask


def _group_rows(
    triggers: Triggers, settings: EvidenceSettings, group: Mapping[str, object]
) -> list[dict[str, object]]:
    """Each member's row, its p-value unadjusted (`tested`: whether it has one)."""
    members: list[tuple[str, str, bool, np.ndarray]] = [
        ("all", "all", True, np.ones(len(triggers.outcomes), bool))
    ]
    for condition in CONDITIONS:
        held = triggers.flags[condition]
        members.append(("condition", condition.upper(), True, held))
        members.append(("condition", condition.upper(), False, ~held))
    members.extend(("pattern", pattern, True, triggers.patterns == pattern) for pattern in PATTERNS)

    if len(triggers.outcomes) == 0:
        return []
    rng = np.random.default_rng(_seed(settings.seed, group))
    session_index = np.unique(triggers.sessions, return_inverse=True)[1].astype(np.int64)
    sessions = int(session_index.max()) + 1
    # whole sessions drawn with replacement: the intervals are clustered by session
    resamples = rng.integers(0, sessions, size=(settings.bootstrap_samples, sessions))
    # tested: each condition once (held) and the patterns, with enough triggers on both sides
    tested = [
        i
        for i, (grouping, _, held, mask) in enumerate(members)
        if grouping != "all"
        and held
        and min(mask.sum(), (~mask).sum()) >= settings.min_triggers
        and _both_outcomes(triggers.outcomes, mask)
    ]
    p_values = _permutation_p_values(
        triggers.outcomes,
        session_index,
        [members[i][3] for i in tested],
        settings.permutations,
        rng,
    )
    tested_p = dict(zip(tested, p_values, strict=True))
    rows = []
    for i, (grouping, member, held, mask) in enumerate(members):
        if not mask.any():
            continue
        row = _shares(triggers, mask, session_index, resamples)
        row.update(
            grouping=grouping,
            member=member,
            held=held,
            separation=_separation(triggers.outcomes, mask),
            tested=i in tested_p,
        )
        p = tested_p.get(i)
        if p is None and grouping == "condition" and not held:
            p = tested_p.get(i - 1)  # the complement's test is the condition's own
        row["p_value"] = p
        rows.append(row)
    return rows


def _seed(seed: int, group: Mapping[str, object]) -> int:
    """A group's random stream: the same whatever else the table holds."""
    key = "|".join(
        str(group[k]) for k in ("level_kind", "level_id", "approach_dir", "window_seconds")
    )
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _shares(
    triggers: Triggers, mask: np.ndarray, session_index: np.ndarray, resamples: np.ndarray
) -> dict[str, object]:
    outcomes = triggers.outcomes[mask]
    n = len(outcomes)
    row: dict[str, object] = {
        "n": n,
        "sessions": len(np.unique(triggers.sessions[mask])),
        **{f"{o.lower()}_share": float(np.mean(outcomes == o)) for o in OUTCOMES},
    }
    sessions = int(session_index.max()) + 1

    def per_session(values: np.ndarray) -> np.ndarray:
        return np.bincount(session_index[mask], weights=values, minlength=sessions)

    counts = per_session(np.ones(n))
    breaks = per_session((outcomes == "BREAK").astype(float))
    rejects = per_session((outcomes == "REJECT").astype(float))
    prior = triggers.base_rates[mask]
    has_prior = ~np.isnan(prior)
    prior_counts = per_session(has_prior.astype(float))
    prior_breaks = per_session(((outcomes == "BREAK") & has_prior).astype(float))
    prior_sums = per_session(np.where(has_prior, prior, 0.0))

    def interval(
        numerator: np.ndarray, denominator: np.ndarray
    ) -> tuple[float | None, float | None]:
        top, bottom = numerator[resamples].sum(1), denominator[resamples].sum(1)
        values = top[bottom > 0] / bottom[bottom > 0]
        if len(values) == 0:
            return None, None
        low, high = np.quantile(values, [0.025, 0.975])
        return float(low), float(high)

    row["break_share_ci_low"], row["break_share_ci_high"] = interval(breaks, counts)
    row["reject_share_ci_low"], row["reject_share_ci_high"] = interval(rejects, counts)
    base_rate = float(prior[has_prior].mean()) if has_prior.any() else None
    row["base_rate"] = base_rate
    if base_rate:
        row["lift"] = float(np.mean(outcomes[has_prior] == "BREAK")) / base_rate
        # the lift of each resample: its BREAK share over its mean base rate
        b, c, s = (
            prior_breaks[resamples].sum(1),
            prior_counts[resamples].sum(1),
            prior_sums[resamples].sum(1),
        )
        ok = (c > 0) & (s > 0)
        lifts = b[ok] / s[ok]
        if len(lifts):
            row["lift_ci_low"], row["lift_ci_high"] = (
                float(q) for q in np.quantile(lifts, [0.025, 0.975])
            )
    return row


def _both_outcomes(outcomes: np.ndarray, mask: np.ndarray) -> bool:
    decided = (outcomes == "BREAK") | (outcomes == "REJECT")
    return bool((decided & mask).any() and (decided & ~mask).any())


def _separation(outcomes: np.ndarray, mask: np.ndarray) -> float | None:
    decided = (outcomes == "BREAK") | (outcomes == "REJECT")
    inside, outside = decided & mask, decided & ~mask
    if not inside.any() or not outside.any():
        return None
    return float(np.mean(outcomes[inside] == "BREAK") - np.mean(outcomes[outside] == "BREAK"))


def _permutation_p_values(
    outcomes: np.ndarray,
    session_index: np.ndarray,
    masks: list[np.ndarray],
    permutations: int,
    rng: np.random.Generator,
) -> list[float]:
    """Two-sided p-values of each mask's separation, outcomes shuffled within sessions
    (`session_index` in ascending order)."""
    if not masks:
        return []
    breaks = (outcomes == "BREAK").astype(np.float64)
    decided = ((outcomes == "BREAK") | (outcomes == "REJECT")).astype(np.float64)
    members = [np.flatnonzero(mask) for mask in masks]
    offsets = np.r_[0, np.cumsum([len(rows) for rows in members])].astype(np.int64)
    rows = np.concatenate(members).astype(np.int64)
    identity = np.arange(len(outcomes), dtype=np.int64)
    observed = np.abs(_member_separations(breaks, decided, identity, rows, offsets))
    starts = np.flatnonzero(np.r_[True, session_index[1:] != session_index[:-1]])
    ends = np.r_[starts[1:], len(session_index)]
    extreme = _permutation_extremes(
        breaks, decided, rows, offsets, observed, starts, ends, permutations, rng
    )
    return [float((1 + e) / (1 + permutations)) for e in extreme]


@nb.njit(cache=True, nogil=True)
def _member_separations(breaks, decided, order, rows, offsets):
    """Per member (its trigger positions rows[offsets[m]:offsets[m + 1]]): the BREAK share of
    the decided triggers inside minus outside, with the outcomes of position i taken from
    trigger order[i]; 0 when either side has no decided trigger."""
    total_breaks = breaks.sum()
    total_decided = decided.sum()
    separations = np.zeros(len(offsets) - 1)
    for m in range(len(offsets) - 1):
        inside_breaks = 0.0
        inside = 0.0
        for r in range(offsets[m], offsets[m + 1]):
            inside_breaks += breaks[order[rows[r]]]
            inside += decided[order[rows[r]]]
        outside = total_decided - inside
        if inside > 0 and outside > 0:
            separations[m] = inside_breaks / inside - (total_breaks - inside_breaks) / outside
    return separations


@nb.njit(cache=True, nogil=True)
def _permutation_extremes(breaks, decided, rows, offsets, observed, starts, ends, draws, rng):
    """Per member, the draws whose |separation| reaches the observed one, each draw shuffling
    the triggers within each session (Fisher-Yates on the generator's stream)."""
    extreme = np.zeros(len(offsets) - 1, np.int64)
    order = np.arange(len(breaks))
    for _ in range(draws):
        for block in range(len(starts)):
            first = starts[block]
            for i in range(ends[block] - 1, first, -1):
                j = first + int(rng.random() * (i - first + 1))
                order[i], order[j] = order[j], order[i]
        drawn = _member_separations(breaks, decided, order, rows, offsets)
        for m in range(len(extreme)):
            if abs(drawn[m]) >= observed[m] - 1e-12:
                extreme[m] += 1
    return extreme


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), each value capped at 1."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()
