"""Market activity scales and defaults of `spymaster simulate` (a module of its own so the command
line parses them without importing the simulator)."""

SCALES = {"tiny": 0.004, "demo": 0.02, "realistic": 1.0}
# strikes listed during the session when the future comes this near the chain's edge (points)
INTRADAY_LISTING_EDGE_POINTS = 50.0


def parse_scale(value: str) -> float:
    if value in SCALES:
        return SCALES[value]
    scale = float(value)
    if not 0 < scale <= 4:
        raise ValueError(f"--scale must be one of {sorted(SCALES)} or a factor in (0, 4]")
    return scale
