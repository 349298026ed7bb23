"""`spymaster bench`: throughput, latency and peak memory of each part, measured on generated
markets (and the real sample files) in fresh processes. This module names the benchmarks in
the order they run, without importing what they measure (the command line lists them)."""

BENCHMARKS = ("ingest", "engine", "options", "retrieval", "hud", "live", "ray", "day", "growth")
