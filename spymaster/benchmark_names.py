"""The benchmarks `spymaster bench` runs, in the order it runs them (a module of its own so the
command line lists them without importing what they measure)."""

BENCHMARKS = ("ingest", "engine", "options", "retrieval", "hud", "live", "ray", "day")
