"""The zero-gamma level: where the summed, signed gamma exposure of an option chain, repriced
over hypothetical futures prices with each option's implied volatility held fixed, crosses zero.

For each second, the profile is evaluated on a grid around spot; between grid points where it
changes sign the crossing is refined (Illinois false position, to 1e-6 points), and the
crossing nearest spot is the level. No crossing within the grid: NaN.
"""

from __future__ import annotations

import math
import os

import numba as nb
import numpy as np

# Numba runs the parallel seconds on OpenMP (libgomp), whose threads by default spin after
# each parallel region; beside the pricing's and the writer's threads on two cores they spun
# 1.4 s of the busy day's quotes model's 11.7 s of CPU: they sleep instead. libgomp reads it
# when it loads, at Numba's first parallel launch (after this import); a setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TOLERANCE_POINTS = 1e-6


@nb.njit(cache=True, inline="always")
def _exposure(forward, log_strike, root, scale):
    """Sum of scale_i n(d1_i) / F: each option's gamma exposure at futures price F, with
    scale_i = weight_i e^(-r T_i) / (sqrt(2 pi) sigma_i sqrt(T_i)) precomputed."""
    log_forward = math.log(forward)
    total = 0.0
    for i in range(log_strike.shape[0]):
        d1 = (log_forward - log_strike[i]) / root[i] + 0.5 * root[i]
        total += scale[i] * math.exp(-0.5 * d1 * d1)
    return total / forward


@nb.njit(cache=True)
def _crossing(low, high, low_value, high_value, log_strike, root, scale):
    """Root of the profile in [low, high], where it changes sign (Illinois false position)."""
    side = 0
    for _ in range(100):
        middle = (low * high_value - high * low_value) / (high_value - low_value)
        if high - low < _TOLERANCE_POINTS:
            break
        value = _exposure(middle, log_strike, root, scale)
        if value == 0.0:
            return middle
        if (value < 0.0) == (low_value < 0.0):
            low, low_value = middle, value
            if side == -1:
                high_value *= 0.5
            side = -1
        else:
            high, high_value = middle, value
            if side == 1:
                low_value *= 0.5
            side = 1
    return (low * high_value - high * low_value) / (high_value - low_value)


@nb.njit(cache=True, nogil=True)
def instrument_order_within_seconds(window_start, instrument_rank, ranks):
    """Rows grouped by second (window_start non-decreasing), in any order within a second:
    the permutation putting each second's rows in instrument order (a counting sort over the
    `ranks` instrument ranks, no comparison sort), and -1; or the row of an instrument that
    appears twice in a second."""
    n = window_start.shape[0]
    order = np.empty(n, np.int64)
    row_of = np.full(ranks, -1, np.int64)
    out, a = 0, 0
    while a < n:
        b = a + 1
        while b < n and window_start[b] == window_start[a]:
            b += 1
        for r in range(a, b):
            if row_of[instrument_rank[r]] >= 0:
                return order[:0], r
            row_of[instrument_rank[r]] = r
        for rank in range(ranks):
            r = row_of[rank]
            if r >= 0:
                order[out] = r
                out += 1
                row_of[rank] = -1
        a = b
    return order, -1


@nb.njit(cache=True)
def _bracket_crossing(g, low, step, values, known, log_strike, root, scale):
    """The crossing in bracket g (grid prices low + (g - 1) step to low + g step) or NaN: the
    upper end when the profile is zero there, else the refined root where it changes sign.
    The profile at a grid price is evaluated once (`values`, `known`)."""
    for i in (g - 1, g):
        if not known[i]:
            values[i] = _exposure(low + i * step, log_strike, root, scale)
            known[i] = True
    previous, value = values[g - 1], values[g]
    if value == 0.0:
        return low + g * step
    if (previous < 0.0 < value) or (previous > 0.0 > value):
        return _crossing(
            low + (g - 1) * step, low + g * step, previous, value, log_strike, root, scale
        )
    return np.nan


@nb.njit(cache=True)
def _nearest_crossing(spot, half_width, step, n_grid, log_strike, root, scale):
    """The crossing nearest spot among the grid's brackets (prices spot - half_width + g step),
    ties to the lower price. Brackets are taken outward from spot and the search stops once
    the next one's nearer end is farther than the best crossing, so most of the grid is never
    evaluated (a bracket's crossing lies within it; `slack` covers rounding)."""
    low = spot - half_width
    values = np.empty(n_grid)
    known = np.zeros(n_grid, np.bool_)
    slack = 1e-6 * step
    best, best_distance = np.nan, np.inf
    # brackets 1..n_grid-1 by the distance of their nearer end: down from spot, and up
    upper = 1
    while upper < n_grid - 1 and low + upper * step < spot:
        upper += 1
    lower = upper - 1
    while lower >= 1 or upper < n_grid:
        up = max(low + (upper - 1) * step - spot, 0.0) if upper < n_grid else np.inf
        down = max(spot - (low + lower * step), 0.0) if lower >= 1 else np.inf
        if min(up, down) > best_distance + slack:
            break
        if up <= down:
            g, upper = upper, upper + 1
        else:
            g, lower = lower, lower - 1
        crossing = _bracket_crossing(g, low, step, values, known, log_strike, root, scale)
        if not math.isnan(crossing):
            distance = abs(crossing - spot)
            if distance < best_distance or (distance == best_distance and crossing < best):
                best, best_distance = crossing, distance
    return best


@nb.njit(cache=True)
def _second_level(s, starts, strikes, years, sigma, weight, spot, half_width, step, rate, n_grid):
    """Second s's zero-gamma level (rows starts[s] to starts[s+1]), or NaN."""
    if math.isnan(spot[s]):
        return np.nan
    count = 0
    for i in range(starts[s], starts[s + 1]):
        if not (math.isnan(sigma[i]) or math.isnan(weight[i])) and years[i] > 0.0:
            count += 1
    if count == 0:
        return np.nan
    log_strike = np.empty(count)
    root = np.empty(count)
    scale = np.empty(count)
    j = 0
    for i in range(starts[s], starts[s + 1]):
        if not (math.isnan(sigma[i]) or math.isnan(weight[i])) and years[i] > 0.0:
            log_strike[j] = math.log(strikes[i])
            root[j] = sigma[i] * math.sqrt(years[i])
            scale[j] = weight[i] * math.exp(-rate * years[i]) * _INV_SQRT_2PI / root[j]
            j += 1
    return _nearest_crossing(spot[s], half_width, step, n_grid, log_strike, root, scale)


@nb.njit(cache=True, parallel=True)
def _levels_in_parallel(starts, strikes, years, sigma, weight, spot, half_width, step, rate):
    n_seconds = starts.shape[0] - 1
    levels = np.full(n_seconds, np.nan)
    n_grid = math.floor(2.0 * half_width / step + 0.5) + 1
    for s in nb.prange(n_seconds):
        levels[s] = _second_level(
            s, starts, strikes, years, sigma, weight, spot, half_width, step, rate, n_grid
        )
    return levels


@nb.njit(cache=True)
def _levels_in_order(starts, strikes, years, sigma, weight, spot, half_width, step, rate):
    n_seconds = starts.shape[0] - 1
    levels = np.full(n_seconds, np.nan)
    n_grid = math.floor(2.0 * half_width / step + 0.5) + 1
    for s in range(n_seconds):
        levels[s] = _second_level(
            s, starts, strikes, years, sigma, weight, spot, half_width, step, rate, n_grid
        )
    return levels


# fewer seconds than this run on the calling thread: a live second's level takes well under a
# millisecond, and waking the parallel region's threads cost 2-3 ms of it on 2 busy cores
PARALLEL_FROM_SECONDS = 8


def zero_gamma_levels(starts, strikes, years, sigma, weight, spot, half_width, step, rate):
    """Per second s (rows starts[s] to starts[s+1]): the zero-gamma level, or NaN; seconds
    are independent and, many at a time, run in parallel (each second's level is the same
    either way).

    `weight` is the signed exposure per unit of gamma (dealer sign x open interest x
    multiplier); rows with a NaN volatility or weight do not count."""
    levels = _levels_in_parallel if len(starts) - 1 >= PARALLEL_FROM_SECONDS else _levels_in_order
    return levels(starts, strikes, years, sigma, weight, spot, half_width, step, rate)
