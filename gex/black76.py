"""Black-76 for options on futures: prices, greeks and a robust implied-volatility solver.

Numba kernels over flat arrays (the synthetic market quotes with them; the GEX surface solves
with them). Conventions: F and K in index points, T in years, r continuously compounded,
`is_call` True for calls. Implied volatility is NaN where the price is at or below intrinsic
value (time value under 1e-9 of the price), at or above the no-arbitrage bound, or where the
solver cannot bracket it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

MIN_VOLATILITY = 1e-4
MAX_VOLATILITY = 5.0
MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@nb.njit(cache=True, inline="always")
def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT_2)


@nb.njit(cache=True, inline="always")
def _norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@nb.njit(cache=True, inline="always")
def _price_and_d1(
    forward: float,
    strike: float,
    discount: float,
    log_moneyness: float,
    sqrt_years: float,
    sigma: float,
    is_call: bool,
) -> tuple[float, float]:
    """The price and d1, given what does not depend on sigma: e^(-rT), ln(F/K) and sqrt(T)
    (computed once per option instead of once per solver step; the same operations in the
    same order, so the same bits)."""
    root = sigma * sqrt_years
    d1 = (log_moneyness + 0.5 * root * root) / root
    d2 = d1 - root
    if is_call:
        return discount * (forward * _norm_cdf(d1) - strike * _norm_cdf(d2)), d1
    return discount * (strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1)), d1


@nb.njit(cache=True)
def _price(
    forward: float, strike: float, years: float, sigma: float, rate: float, is_call: bool
) -> float:
    return _price_and_d1(
        forward,
        strike,
        math.exp(-rate * years),
        math.log(forward / strike),
        math.sqrt(years),
        sigma,
        is_call,
    )[0]


@nb.njit(cache=True, inline="always")
def _implied_volatility_and_d1(
    price: float,
    forward: float,
    strike: float,
    years: float,
    rate: float,
    is_call: bool,
    guess: float,
) -> tuple[float, float]:
    """The implied volatility and, when the solver priced at it, d1 there (NaN otherwise):
    gamma at the solution needs no second pass over the logarithm and the root."""
    if not (price > 0.0 and forward > 0.0 and strike > 0.0 and years > 0.0):
        return math.nan, math.nan
    discount = math.exp(-rate * years)
    intrinsic = (
        discount * max(forward - strike, 0.0) if is_call else discount * max(strike - forward, 0.0)
    )
    upper = discount * forward if is_call else discount * strike
    # Time value lost in floating-point noise says nothing about volatility.
    if price - intrinsic <= 1e-9 * max(price, 1.0) or price >= upper:
        return math.nan, math.nan
    log_moneyness = math.log(forward / strike)
    sqrt_years = math.sqrt(years)
    low, high = MIN_VOLATILITY, MAX_VOLATILITY
    # The price must lie between the prices at the two volatility bounds. The price rises
    # with volatility, so a step that prices under it shows the lower bound prices under it
    # too, and one that prices over it shows the same of the upper bound: each bound is
    # priced only when no step showed it (the answer is the same, two pricings fewer).
    under_seen = over_seen = False
    sigma = guess if low < guess < high else 0.2
    d1 = math.nan
    for _ in range(100):
        value, d1 = _price_and_d1(
            forward, strike, discount, log_moneyness, sqrt_years, sigma, is_call
        )
        value -= price
        if abs(value) <= 1e-12 * price:
            under_seen |= value <= 0.0
            over_seen |= value >= 0.0
            break
        if value > 0.0:
            high = sigma
            over_seen = True
        else:
            low = sigma
            under_seen = True
        vega = discount * forward * _norm_pdf(d1) * sqrt_years
        step = sigma - value / vega if vega > 1e-14 else -1.0
        # Newton inside the bracket, bisection whenever Newton would leave it.
        sigma = step if low < step < high else 0.5 * (low + high)
        if high - low < 1e-13:
            d1 = math.nan  # not priced at this sigma
            break
    else:
        return math.nan, math.nan
    # At MIN_VOLATILITY the time value is e^(-rT) E|F e^X - F| at most (X the log-return), under
    # F e^(-rT) sigma sqrt(T) (1 + 1e-8) for any T under a century: a price above that, with
    # room for rounding, is over the lower bound's price without pricing it.
    time_value_bound = discount * forward * MIN_VOLATILITY * sqrt_years * 1.001
    if not under_seen and price - intrinsic <= time_value_bound + 1e-9 * (forward + strike):
        low_price = _price_and_d1(
            forward, strike, discount, log_moneyness, sqrt_years, MIN_VOLATILITY, is_call
        )[0]
        if low_price > price:
            return math.nan, math.nan
    if not over_seen:
        high_price = _price_and_d1(
            forward, strike, discount, log_moneyness, sqrt_years, MAX_VOLATILITY, is_call
        )[0]
        if high_price < price:
            return math.nan, math.nan
    return sigma, d1


@nb.njit(cache=True)
def _gamma(forward: float, strike: float, years: float, sigma: float, rate: float) -> float:
    root = sigma * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * root * root) / root
    return math.exp(-rate * years) * _norm_pdf(d1) / (forward * root)


@nb.njit(cache=True)
def price(forward, strike, years, sigma, rate, is_call):
    """Black-76 option prices (arrays broadcast by flat index; all the same length)."""
    out = np.empty(len(forward))
    for i in range(len(forward)):
        out[i] = _price(forward[i], strike[i], years[i], sigma[i], rate, is_call[i])
    return out


@nb.njit(cache=True)
def gamma(forward, strike, years, sigma, rate):
    """Black-76 gamma: d(delta)/dF per 1 point of the future."""
    out = np.empty(len(forward))
    for i in range(len(forward)):
        if math.isnan(sigma[i]) or years[i] <= 0.0:
            out[i] = math.nan
        else:
            out[i] = _gamma(forward[i], strike[i], years[i], sigma[i], rate)
    return out


@nb.njit(cache=True)
def implied_volatility(option_price, forward, strike, years, rate, is_call):
    """Implied volatilities; NaN where unsolvable (see the module docstring)."""
    out = np.empty(len(option_price))
    for i in range(len(option_price)):
        out[i] = _implied_volatility_and_d1(
            option_price[i], forward[i], strike[i], years[i], rate, is_call[i], 0.2
        )[0]
    return out
