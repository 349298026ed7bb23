"""Compile the Numba kernels into their cache before the test workers start (`make pytest`).

A fresh clone has no kernel cache. Left to the tests, the first three builds (the end-to-end
market and both retrieval markets, started together) would each compile the generator's
kernels and the engine's, about 32 s of CPU each per process. Here one session of the tiny
market is generated, landed and built through the engine models: the tests' code paths, so
the signatures they call are cached; then the evaluation's kernels are called directly.
`make test` runs this beside sqlfluff."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from foundation.lake import Lake
from ingest.landing import ingest
from retrieval.evaluation import SessionBootstrap, auc, column_aucs
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market
from tests.markets import dbt


def compile_kernels(root: Path) -> None:
    lake = Lake(root / "lake")
    simulate_market(lake.raw, MarketConfig(sessions=1, seed=1, scale=SCALES["tiny"]))
    ingest(lake.raw, lake, workers=1)
    # dbt's parse and logs stay in the scratch folder (the tests and sqlfluff have their own)
    os.environ["DBT_TARGET_PATH"] = str(root / "target")
    os.environ["DBT_LOG_PATH"] = str(root / "logs")
    dbt(lake, "build", "--select", "+tag:engine", "--exclude-resource-type", "test")
    # the evaluation's kernels, which only builds reaching the walk-forward models call
    # (7 s to compile): on the arrays' types and layouts those models pass
    rng = np.random.default_rng(0)
    sessions = np.repeat(np.arange(4), 5).astype("datetime64[D]")
    labels = rng.random(20) < 0.5
    SessionBootstrap.draw(sessions, 10, rng).ranking_metrics(labels, rng.random((2, 20)))
    column_aucs(labels, rng.random((20, 3)))
    auc(labels, rng.random(20))  # and session_concordance's within-session pairs


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spymaster-kernels-") as scratch:
        compile_kernels(Path(scratch))
    print(f"kernels compiled and cached in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
