"""Joining or starting Ray, and running a function over items as Ray tasks, results in order.

`spymaster ingest|build --ray auto` starts a local Ray with this machine's cores; an address
(`host:port`) joins a running cluster. A build's dbt runs in a child process, which joins the
same cluster through `SPYMASTER_RAY_ADDRESS`. Every node must have this project installed
(`uv sync`) and see the lake at the same path (a shared file system).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

RAY_ADDRESS_ENV_VAR = "SPYMASTER_RAY_ADDRESS"
LOCAL_CLUSTER = "auto"
PROBE_SECONDS = 3.0

# dbt runs two Python models at a time in one process: one of them initialises Ray
_CONNECT_LOCK = threading.Lock()

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class ClusterError(Exception):
    """Ray cannot be started or joined, or a task was lost; the message names the address."""


def requested_address(argument: str | None) -> str | None:
    """--ray's value, else $SPYMASTER_RAY_ADDRESS, else None (no Ray: run as without it)."""
    chosen = argument if argument is not None else os.environ.get(RAY_ADDRESS_ENV_VAR, "")
    return chosen.strip() or None


def _import_ray() -> Any:
    # Run under `uv run`, Ray would by default zip the working directory (the project, a lake
    # inside it) for every job and start each worker through `uv run` from that copy: seconds
    # per worker, and the kernels' compile cache missed. Workers run this interpreter and the
    # installed project instead (every node: `uv sync`). Ray reads the flag on import.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    return ray


def connect(address: str) -> str:
    """Join the cluster at `address`, or start a local one for `auto`; the address another
    process can join. Idempotent within a process (dbt runs several models in one)."""
    ray = _import_ray()
    with _CONNECT_LOCK:
        if not ray.is_initialized():
            # task output and Ray's start-up lines stay in Ray's logs; errors come back raised
            quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
            try:
                if address == LOCAL_CLUSTER:
                    ray.init(
                        address="local",
                        num_cpus=os.cpu_count(),
                        include_dashboard=False,
                        **quiet,
                    )
                else:
                    _require_listening(address)
                    ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as error:
                action = "start a local Ray" if address == LOCAL_CLUSTER else "join the Ray cluster"
                raise ClusterError(f"--ray {address}: cannot {action} ({error})") from None
        return ray.get_runtime_context().gcs_address


def _require_listening(address: str) -> None:
    """Fail in seconds when nothing listens at host:port (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address}: not `auto` nor a cluster address host:port")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise ClusterError(
            f"--ray {address}: no Ray cluster answers there ({error.strerror or error}); "
            "start one with `ray start --head` or use --ray auto"
        ) from None


@contextmanager
def ray_session(address: str) -> Iterator[str]:
    """Ray for the duration of a command: the joinable address; a local cluster this process
    started stops on exit."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    joinable = connect(address)
    try:
        yield joinable
    finally:
        if started_here:
            ray.shutdown()


def largest_node_memory() -> int:
    """Bytes of Ray's `memory` resource on the largest node: a task asking for more could
    never be scheduled, so requests are capped there."""
    ray = _import_ray()
    return max(int(node["Resources"].get("memory", 0)) for node in ray.nodes() if node.get("Alive"))


def unwrapped(error: BaseException) -> BaseException:
    """The exception a task raised (an EngineError naming its partition, say), not Ray's
    wrapper with the remote traceback."""
    ray = _import_ray()
    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        return error.cause
    return error


def ordered_map(
    function: Callable[[_In], _Out],
    items: Iterable[_In],
    *,
    memory_bytes: Callable[[_In], int],
    in_flight: int,
) -> Iterator[_Out]:
    """`function` over `items` as Ray tasks, results in input order. At most `in_flight`
    tasks are submitted ahead of the one being collected, so a long run does not hold every
    input in the object store at once. A worker that dies is retried by Ray (the task must be
    idempotent); what a task raised is re-raised here as itself."""
    ray = _import_ray()
    remote = ray.remote(function)
    capacity = largest_node_memory()
    pending: deque[Any] = deque()
    source = iter(items)

    def submit_next() -> bool:
        item = next(source, None)
        if item is None:
            return False
        memory = min(max(memory_bytes(item), 1), capacity)
        pending.append(remote.options(memory=memory, max_retries=3).remote(item))
        return True

    try:
        while len(pending) < in_flight and submit_next():
            pass
        while pending:
            reference = pending.popleft()
            try:
                result = ray.get(reference)
            except ray.exceptions.RayTaskError as error:
                raise unwrapped(error) from None
            except ray.exceptions.RayError as error:
                raise ClusterError(
                    f"a Ray task was lost ({type(error).__name__}: {error})"
                ) from None
            submit_next()
            yield result
    finally:
        for reference in pending:
            ray.cancel(reference, force=True)


def cluster_cpus() -> int:
    ray = _import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
