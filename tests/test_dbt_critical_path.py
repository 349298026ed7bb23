"""spymaster.dbt_critical_path: dbt's scheduler takes the ready node with the longest chain
after it, and hands a node out only when a thread is free to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import networkx as nx

from spymaster.dbt_critical_path import longest_chain_first
from spymaster.lake import DBT

CHAIN = [f"chain_{i}" for i in range(1, 5)]
LEAVES = [f"leaf_{i}" for i in range(1, 5)]


def test_scores_put_the_longest_chain_first_then_the_shallowest() -> None:
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "d"), ("a", "test_a"), ("leaf", "test_leaf")])
    scores = longest_chain_first(graph)
    assert scores == {
        "a": (-3, 0),
        "b": (-2, 1),
        "c": (-1, 2),
        "d": (0, 3),
        "test_a": (0, 1),
        "leaf": (-1, 0),
        "test_leaf": (0, 1),
    }


def small_project(root: Path) -> Path:
    """A dbt project of a four-model chain beside four independent models with a test each."""
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: small\nversion: '1.0'\nprofile: small\nmodel-paths: [models]\n"
    )
    (root / "profiles.yml").write_text(
        "small:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'small.duckdb'}\n      threads: 1\n"
    )
    previous = None
    for name in CHAIN:
        source = f"select x from {{{{ ref('{previous}') }}}}" if previous else "select 1 as x"
        (root / "models" / f"{name}.sql").write_text(source + "\n")
        previous = name
    tests = []
    for name in LEAVES:
        (root / "models" / f"{name}.sql").write_text("select 1 as x\n")
        tests.append(
            f"  - name: {name}\n    columns:\n      - name: x\n        tests: [not_null]\n"
        )
    (root / "models" / "schema.yml").write_text("version: 2\nmodels:\n" + "".join(tests))
    return root


def build_order(command: list[str], project: Path) -> list[str]:
    """The nodes of `dbt build` on one thread, in the order they ran."""
    target = project / "target"
    done = subprocess.run(
        [*command, "build", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target-path", str(target)],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = sorted(results, key=lambda result: result["timing"][0]["started_at"])
    return [result["unique_id"].split(".")[2] for result in ran]


def test_the_chain_goes_before_the_models_and_tests_beside_it(tmp_path: Path) -> None:
    project = small_project(tmp_path / "project")
    order = build_order(list(DBT), project)
    assert order[:2] == CHAIN[:2]  # the leaves' chains (a model, its test) are shorter
    # dbt's own scheduler queues every model without parents, and then their tests, first
    dbt = [str(Path(sys.executable).with_name("dbt"))]
    stock = build_order(dbt, small_project(tmp_path / "stock"))
    assert stock.index("chain_2") > max(stock.index(name) for name in LEAVES)


def test_the_process_ends_with_the_warehouse_closed_and_dbt_s_status(tmp_path: Path) -> None:
    """Without the interpreter's teardown: dbt's exit status (a failure's too), its output
    whole, and the database closed with every model's table in it, no write-ahead log left."""
    project = small_project(tmp_path / "project")
    command = [*DBT, "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done. PASS=12 " in done.stdout
    assert "nanobind" not in done.stderr
    assert not (project / "small.duckdb.wal").exists()
    connection = duckdb.connect(str(project / "small.duckdb"), read_only=True)
    try:
        assert connection.execute("select x from chain_4").fetchall() == [(1,)]
    finally:
        connection.close()
    (project / "models" / "chain_3.sql").write_text("select no_such_column from chain_2\n")
    failed = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "no_such_column" in failed.stdout
    assert not (project / "small.duckdb.wal").exists()
