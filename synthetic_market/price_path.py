"""One session's price path, second by second, with planted level approaches.

The path is the best bid (in ticks) of the session's dominant contract for every second of the
UTC-day file. Before 09:45 New York it is a random walk whose extremes make the pre-market and
opening-range levels; from 09:45 to 12:30 it is choreographed: price travels to one of the
session's levels (pre-market high/low, opening-range high/low, SMA 90 of 2-minute bars), enters
its 20-tick zone, brings the touch to the level (the trigger: spot is then within 2 ticks of it
whichever side trades) and resolves as BREAK, REJECT or CHOP. In the seconds up to the trigger
the order-book signature of an outcome is planted: usually that of the
realised outcome, with probability `signature_noise` another one, never at strength 0.
Nothing before a trigger depends on the outcome except the planted signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthetic_market.calendar import SessionTimes

ZONE_TICKS = 20
BAR_SECONDS = 120
SMA_BARS = 90

BREAK, REJECT, CHOP = "BREAK", "REJECT", "CHOP"
OUTCOMES = (BREAK, REJECT, CHOP)

# Planted order-book actions, interpreted by the futures book generator.
PULL, REPRICE_AWAY, STACK = 0, 1, 2
BID, ASK = 0, 1
PLANTED_DTYPE = np.dtype(
    [
        ("second_start", "i8"),
        ("second_end", "i8"),
        ("kind", "i8"),
        ("side", "i8"),
        ("price_low", "i8"),
        ("price_high", "i8"),
        ("count", "i8"),
        ("shift", "i8"),
    ]
)


@dataclass(frozen=True)
class PathConfig:
    signal_strength: float = 1.0
    signature_noise: float = 0.2
    outcome_probabilities: tuple[float, float, float] = (0.4, 0.4, 0.2)
    signature_orders: float = 60.0
    level_weights: dict[str, float] = field(
        default_factory=lambda: {
            "PM_HIGH": 0.3,
            "PM_LOW": 0.3,
            "OR_HIGH": 0.13,
            "OR_LOW": 0.13,
            "SMA_90": 0.14,
        }
    )
    chop_seconds: int = 600
    # After a break, how often price comes back to test the level from its new side
    retest_probability: float = 0.5


@dataclass
class SessionPath:
    """Everything the book generators and the ground truth need about one session."""

    best_bid: np.ndarray  # int64 ticks per second of the file
    activity: np.ndarray  # float64 relative event rate per second (0 during the halt)
    planted: np.ndarray  # PLANTED_DTYPE
    approaches: list[dict[str, object]]
    levels: dict[str, float]


def _phase_seconds(times: SessionTimes, hour: int, minute: int = 0) -> int:
    return (times.at(hour, minute) - times.file_start) // 1_000_000_000


def _activity_and_volatility(times: SessionTimes) -> tuple[np.ndarray, np.ndarray]:
    """Relative event rate and per-second move probability by phase of the day."""
    seconds = (times.file_end - times.file_start) // 1_000_000_000
    activity = np.full(seconds, 0.08)
    move = np.full(seconds, 0.03)
    phases = [
        ((5, 0), (9, 30), 0.25, 0.06),
        ((9, 30), (9, 45), 3.0, 0.35),
        ((9, 45), (12, 30), 1.0, 0.12),
        ((12, 30), (16, 0), 0.7, 0.08),
        ((16, 0), (17, 0), 0.3, 0.04),
        ((17, 0), (18, 0), 0.0, 0.0),
    ]
    for start, end, rate, volatility in phases:
        first = max(0, _phase_seconds(times, *start))
        last = min(seconds, _phase_seconds(times, *end))
        activity[first:last] = rate
        move[first:last] = volatility
    return activity, move


def _clustered(activity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply by a mean-one log-normal AR(1) factor: arrivals come in bursts."""
    rho, sigma = 0.95, 0.35
    shocks = rng.normal(0.0, sigma, len(activity))
    state = np.empty(len(activity))
    level = 0.0
    for i, shock in enumerate(shocks):
        level = rho * level + shock
        state[i] = level
    stationary = sigma**2 / (1 - rho**2)
    return activity * np.exp(state - stationary / 2)


class _Walker:
    """Writes the path second by second."""

    def __init__(self, best_bid: np.ndarray, start: int, price: int, rng: np.random.Generator):
        self.path = best_bid
        self.t = start
        self.price = price
        self.rng = rng

    def step(self, move: int) -> None:
        self.price += move
        self.path[self.t] = self.price
        self.t += 1

    def random_walk(self, until: int, move_probability: np.ndarray) -> None:
        while self.t < min(until, len(self.path)):
            draw = self.rng.random()
            probability = move_probability[self.t]
            self.step(1 if draw < probability / 2 else -1 if draw < probability else 0)

    def drift(self, target: int, speed: float, floor: int | None, ceiling: int | None) -> None:
        """Biased walk until the price reaches `target`, kept inside [floor, ceiling]."""
        while self.price != target and self.t < len(self.path):
            direction = 1 if target > self.price else -1
            draw = self.rng.random()
            move = direction if draw < speed else -direction if draw < speed + 0.1 else 0
            if floor is not None and self.price + move < floor:
                move = 0
            if ceiling is not None and self.price + move > ceiling:
                move = 0
            self.step(move)

    def oscillate(self, center: int, half_width: int, seconds: int) -> None:
        end = min(self.t + seconds, len(self.path))
        while self.t < end:
            draw = self.rng.random()
            move = 1 if draw < 0.1 else -1 if draw < 0.2 else 0
            if abs(self.price + move - center) > half_width:
                move = -move
            self.step(move)


def _sma_ticks(path: np.ndarray, t: int, bar_origin: int) -> int:
    """SMA of the last 90 closed 2-minute bar closes before second t (closes ~ bid + 1/2)."""
    closed = (t - bar_origin) // BAR_SECONDS
    first = max(0, closed - SMA_BARS)
    closes = [path[bar_origin + (bar + 1) * BAR_SECONDS - 1] + 0.5 for bar in range(first, closed)]
    return round(float(np.mean(closes))) if closes else int(path[t - 1])


def build_session_path(
    times: SessionTimes,
    start_price_ticks: int,
    config: PathConfig,
    rng: np.random.Generator,
    signature_rng: np.random.Generator,
    tick_size: float = 0.25,
) -> SessionPath:
    """The session's path from `rng`; signatures from `signature_rng` alone, so that the same
    seed gives the same prices, approaches and outcomes at every signal strength."""
    seconds = (times.file_end - times.file_start) // 1_000_000_000
    activity, move_probability = _activity_and_volatility(times)
    activity = _clustered(activity, rng)
    best_bid = np.zeros(seconds, dtype=np.int64)
    walker = _Walker(best_bid, 0, start_price_ticks, rng)
    pre_market, open_, range_end = (
        _phase_seconds(times, 5),
        _phase_seconds(times, 9, 30),
        _phase_seconds(times, 9, 45),
    )
    walker.random_walk(range_end, move_probability)
    levels = {
        "PM_HIGH": int(best_bid[pre_market:open_].max()) + 1,
        "PM_LOW": int(best_bid[pre_market:open_].min()),
        "OR_HIGH": int(best_bid[open_:range_end].max()) + 1,
        "OR_LOW": int(best_bid[open_:range_end].min()),
    }
    bar_origin = open_ % BAR_SECONDS
    approaches: list[dict[str, object]] = []
    planted: list[tuple[int, ...]] = []
    choreography_end = _phase_seconds(times, 12, 30)
    while walker.t < choreography_end - 300:
        current = {**levels, "SMA_90": _sma_ticks(best_bid, walker.t, bar_origin)}
        retest = approaches and approaches[-1]["outcome"] == BREAK
        if retest and rng.random() < config.retest_probability:
            name = str(approaches[-1]["level_id"])
        else:
            name = _choose_level(current, walker.price, config, rng)
        level = current[name]
        _approach(
            walker, level, times, name, config, rng, signature_rng, approaches, planted, tick_size
        )
    walker.random_walk(seconds, move_probability)
    return SessionPath(
        best_bid=best_bid,
        activity=activity,
        planted=np.array(planted, dtype=PLANTED_DTYPE),
        approaches=approaches,
        levels={name: value * tick_size for name, value in levels.items()},
    )


def _choose_level(
    levels: dict[str, int], price: int, config: PathConfig, rng: np.random.Generator
) -> str:
    names = list(config.level_weights)
    weights = np.array([config.level_weights[name] for name in names])
    distances = np.array([abs(price - levels[name]) for name in names])
    # Prefer levels within reach; a far level is travelled to first.
    weights = weights * np.where(distances <= 80, 1.0, 0.15)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _approach(
    walker: _Walker,
    level: int,
    times: SessionTimes,
    name: str,
    config: PathConfig,
    rng: np.random.Generator,
    signature_rng: np.random.Generator,
    approaches: list[dict[str, object]],
    planted: list[tuple[int, ...]],
    tick_size: float,
) -> None:
    side = 1 if walker.price < level else -1  # +1: approach from below (UP)
    if walker.price == level:
        side = 1 if rng.random() < 0.5 else -1
    start_distance = int(rng.integers(24, 36))
    # Leave the zone (re-arms the level) or come closer, on the current side of the level.
    walker.drift(level - side * start_distance, 0.5, None, None)
    outcome = OUTCOMES[int(rng.choice(3, p=np.array(config.outcome_probabilities)))]
    zone_entry = None
    speed = float(rng.uniform(0.25, 0.5))
    # Travel until the ask (UP) or the bid (DOWN) is at the level: then spot, whichever side
    # trades, is within a tick of it, so a trigger within 2 ticks of a trade-based level (which
    # may sit a tick inside this one) fires whatever the last trade.
    while walker.t < len(walker.path):
        touch = walker.price + 1 if side == 1 else walker.price
        if zone_entry is None and abs(touch - level) <= ZONE_TICKS:
            zone_entry = walker.t
        if side * (touch - level) >= 0:
            break
        walker.drift(walker.price + side, speed, None, None)
    trigger = walker.t
    signature = outcome
    if signature_rng.random() < config.signature_noise:
        signature = OUTCOMES[
            int(signature_rng.choice([i for i, o in enumerate(OUTCOMES) if o != outcome]))
        ]
    magnitude = config.signal_strength * float(signature_rng.lognormal(0.0, 0.4))
    window = int(signature_rng.integers(12, 25))
    if config.signal_strength > 0:
        planted.extend(
            _signature(
                signature, side, level, trigger - window, trigger, magnitude, config, signature_rng
            )
        )
    direction = "UP" if side == 1 else "DOWN"
    if outcome == BREAK:
        target = level + side * int(rng.integers(11, 16))
        floor, ceiling = (level - 4, None) if side == 1 else (None, level + 4)
        walker.drift(target, float(rng.uniform(0.2, 0.45)), floor, ceiling)
    elif outcome == REJECT:
        target = level - side * int(rng.integers(11, 16))
        floor, ceiling = (None, level + 3) if side == 1 else (level - 4, None)
        walker.drift(target, float(rng.uniform(0.2, 0.45)), floor, ceiling)
    else:
        walker.oscillate(level - (1 if side == 1 else 0), 4, config.chop_seconds)
    approaches.append(
        {
            "session_date": times.day,
            "level_id": name,
            "level_price": level * tick_size,
            "approach_dir": direction,
            "zone_entry_ts": times.file_start + (zone_entry or trigger) * 1_000_000_000,
            "trigger_ts": times.file_start + trigger * 1_000_000_000,
            "outcome": outcome,
            "signature_outcome": signature if config.signal_strength > 0 else None,
            "signature_magnitude": magnitude,
            "resolved_ts": times.file_start + walker.t * 1_000_000_000,
        }
    )


def _signature(
    outcome: str,
    side: int,
    level: int,
    start: int,
    end: int,
    magnitude: float,
    config: PathConfig,
    rng: np.random.Generator,
) -> list[tuple[int, ...]]:
    """Planted actions for an approach from below (side +1) or above (-1), mirrored."""

    def count(share: float) -> int:
        return max(1, round(config.signature_orders * share * magnitude * rng.lognormal(0, 0.3)))

    ahead = ASK if side == 1 else BID  # the liquidity price must go through
    behind = BID if side == 1 else ASK  # the liquidity holding price up (UP) or down (DOWN)

    def band(near: int, far: int) -> tuple[int, int]:
        """Prices `near`..`far` ticks beyond the level (ahead side) or before it (behind)."""
        low, high = sorted((level + side * near, level + side * far))
        return low, high

    actions: list[tuple[int, ...]] = []
    if outcome in (BREAK, CHOP):
        actions.append((start, end, PULL, ahead, *band(0, 10), count(1.0), 0))
    if outcome == BREAK:
        actions.append((start, end, REPRICE_AWAY, ahead, *band(-1, 6), count(0.7), 4))
        actions.append((start, end, STACK, behind, *band(-8, -3), count(0.9), 0))
    if outcome in (REJECT, CHOP):
        actions.append((start, end, PULL, behind, *band(-12, -3), count(1.0), 0))
    if outcome == REJECT:
        actions.append((start, end, REPRICE_AWAY, behind, *band(-10, -3), count(0.7), 4))
        actions.append((start, end, STACK, ahead, *band(0, 2), count(1.0), 0))
    return actions


def session_start_prices(first_price: float, sessions: int, rng: np.random.Generator) -> list[int]:
    """Opening best bid (ticks) of each session: a slow daily random walk, 0.8% a day."""
    daily = rng.normal(0.0, 0.008, sessions)
    daily[0] = 0.0
    prices = first_price * np.exp(np.cumsum(daily))
    return [round(price / 0.25) for price in prices]
