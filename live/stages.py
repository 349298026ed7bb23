"""The live models in stages, each stage brought up to date on a thread of its own whenever
everything it reads has moved a step of market time: first the layers the HUD draws over the
heatmap (derived from the engine's rows and the options), then the session's levels,
features, triggers and neighbours; a stage never runs beside one the HUD draws sooner.

`until[name]`: a live table's rows are complete before this (ns). The feed moves its sources'
(after adding their rows); a stage moves its models' once their rows are inserted, and wakes
the stages reading them."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa

from live.day_tables import LiveTables
from live.model_runs import ModelRuns
from live.models import LiveModel

Emit = Callable[[str, pa.Table], None]
# a stage's models that may run at once (each statement on its own thread): one a core
MODEL_WORKERS = max(2, os.cpu_count() or 1)


@dataclass
class Stage:
    name: str
    models: list[LiveModel]
    inputs: set[str] = field(default_factory=set)  # what it reads that others make
    seen: dict[str, float] = field(default_factory=dict)  # their `until` at its last run
    read_versions: dict[str, dict[str, int]] = field(default_factory=dict)
    thread: threading.Thread | None = None
    workers: ThreadPoolExecutor | None = None
    running: bool = False
    waiting: bool = False  # due, but a stage before it is running


class Stages:
    def __init__(
        self,
        tables: LiveTables,
        runs: ModelRuns,
        groups: Sequence[tuple[str, Sequence[LiveModel]]],
        emit: Emit,
        step_ns: int,
        day_start_ns: int,
        day_end_ns: int,
    ) -> None:
        """`groups`: each stage's name and models, in the order they are computed."""
        self.tables = tables
        self.runs = runs
        self.emit = emit
        self.step_ns = step_ns
        self.day_end_ns = day_end_ns
        self.on_progress: Callable[[str], None] | None = None
        self.stages = [
            Stage(
                name,
                list(models),
                workers=ThreadPoolExecutor(MODEL_WORKERS, thread_name_prefix=f"live-{name}"),
            )
            for name, models in groups
        ]
        computed = {model.name for stage in self.stages for model in stage.models}
        self.sources: dict[str, list[str]] = {}  # source kind -> its tables
        for model in tables.models.values():
            if model.source is not None and model.source not in runs.computed:
                self.sources.setdefault(model.source, []).append(model.name)
        self.until: dict[str, float] = dict.fromkeys(
            computed | {t for tables in self.sources.values() for t in tables}, day_start_ns
        )
        # the live tables each model reads
        self.reads = {name: set(tables.models[name].parents) & set(self.until) for name in computed}
        for stage in self.stages:
            mine = {model.name for model in stage.models}
            stage.inputs = set().union(*(self.reads[name] for name in mine)) - mine
            stage.seen = dict.fromkeys(stage.inputs, -math.inf)
        self._changed = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None

    # -- the feed's side ------------------------------------------------------------------

    def start(self) -> None:
        for stage in self.stages:
            stage.thread = threading.Thread(
                target=self._loop, args=(stage,), name=f"live-{stage.name}", daemon=True
            )
            stage.thread.start()

    def advance(self, sources: Mapping[str, float]) -> None:
        """Each source kind's rows are complete before `sources[kind]` (ns), and added."""
        self.raise_error()
        with self._changed:
            moved = False
            for kind, ns in sources.items():
                for table in self.sources.get(kind, ()):
                    if ns > self.until[table]:
                        self.until[table] = ns
                        moved = True
            if moved:
                self._changed.notify_all()

    def settle(self) -> None:
        """Wait until no stage is running or due (every stage is up to date with its
        sources, to the step)."""
        self.raise_error()
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._closing
                    or not any(stage.running or self._due(stage) for stage in self.stages)
                )
            )
        self.raise_error()

    def catch_up(self) -> None:
        """Every stage due, brought up to date in order on this thread (stages whose threads
        were not started: a test steps them one by one)."""
        self.raise_error()
        for stage in self.stages:
            with self._changed:
                due = self._due(stage)
            if due:
                self._run(stage, final=False)

    def finish(self) -> None:
        """The feed has ended: every stage's thread stops, then each stage is brought up to
        date to the end of the day, in order, on this thread."""
        self.stop()
        self.raise_error()
        with self._changed:
            for tables in self.sources.values():
                for table in tables:
                    self.until[table] = self.day_end_ns
        for stage in self.stages:
            self._run(stage, final=True)

    def stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        for stage in self.stages:
            if stage.thread is not None:
                stage.thread.join()
                stage.thread = None

    def close(self) -> None:
        """The threads stopped, and the stages' workers."""
        self.stop()
        for stage in self.stages:
            if stage.workers is not None:
                stage.workers.shutdown()
                stage.workers = None

    def raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def snapshot(self) -> dict[str, float]:
        with self._changed:
            return dict(self.until)

    # -- each stage's thread --------------------------------------------------------------

    def _loop(self, stage: Stage) -> None:
        try:
            while True:
                with self._changed:
                    while not self._closing and not self._due(stage):
                        self._changed.wait()
                    if self._closing:
                        return
                    stage.running, stage.waiting = True, False
                    self._changed.notify_all()  # the stages waiting for it to start
                try:
                    self._run(stage, final=False)
                finally:
                    with self._changed:
                        stage.running = False
                        self._changed.notify_all()
        except BaseException as error:  # raised on the feed's thread at its next step
            self._error = error
            with self._changed:
                self._closing = True
                self._changed.notify_all()

    def _due(self, stage: Stage) -> bool:
        """Whether everything it reads has moved a step since its last run, and it may start
        (under the lock): the stages run one after the other, a stage never beside one the
        HUD draws sooner; and a stage that has finished lets a later one waiting for it start
        before it starts again (at more than real time an earlier stage never rests)."""
        now = min((self.until[name] for name in stage.inputs), default=math.inf)
        seen = min((stage.seen[name] for name in stage.inputs), default=math.inf)
        if not now - seen >= self.step_ns:
            stage.waiting = False
            return False
        index = self.stages.index(stage)
        if any(earlier.running for earlier in self.stages[:index]):
            stage.waiting = True
            return False
        return not any(later.waiting for later in self.stages[index + 1 :])

    def _run(self, stage: Stage, final: bool) -> None:
        """Bring the stage's models up to date with the rows complete now (a source's rows
        are all added before its `until` moves: those before this snapshot are flushed).
        Each model runs once what it reads of the stage is there, beside the others: DuckDB
        runs each statement on its caller's thread."""
        until = self.snapshot()
        stage.seen = {name: until[name] for name in stage.inputs}
        jobs: dict[str, Callable[[], None]] = {}
        after: dict[str, set[str]] = {}
        for name in stage.inputs:
            if self.tables.models[name].source:
                jobs[name] = partial(self.tables.flush, [name])
                after[name] = set()
        for model in stage.models:
            jobs[model.name] = partial(self._bring_up_to_date, stage, model, until, final)
            after[model.name] = {parent for parent in self.reads[model.name] if parent in jobs}
        self._run_graph(stage, jobs, after)
        if final:
            for model in stage.models:
                if model.recompute == "session":
                    self.emit(model.name, self.tables.rows(model.name))
        if self.on_progress is not None:
            self.on_progress(stage.name)

    @staticmethod
    def _run_graph(
        stage: Stage, jobs: Mapping[str, Callable[[], None]], after: Mapping[str, set[str]]
    ) -> None:
        """Each job once the jobs it comes after are done, as many at once as the stage has
        workers; the first failure is raised once every job started has ended."""
        waiting = {name: set(before) for name, before in after.items()}
        running: dict[Future[None], str] = {}
        done: set[str] = set()
        failure: BaseException | None = None
        while waiting or running:
            if failure is None:
                for name in [n for n, before in waiting.items() if before <= done]:
                    running[stage.workers.submit(jobs[name])] = name
                    del waiting[name]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is not None:
                    failure = failure or future.exception()
                done.add(name)
        if failure is not None:
            raise failure

    def _bring_up_to_date(
        self, stage: Stage, model: LiveModel, until: dict[str, float], final: bool
    ) -> None:
        ready = min((until[parent] for parent in self.reads[model.name]), default=self.day_end_ns)
        if model.recompute == "tail":
            self._tail(model, ready, until)
        elif ready > until[model.name] or final:
            if final or self._parents_changed(stage, model):
                rows = self.runs.session(model)
                if rows is not None and model.source is not None:
                    self.emit(model.name, rows)
            self._moved(model.name, ready, until)

    def _tail(self, model: LiveModel, ready: float, until: dict[str, float]) -> None:
        start = until[model.name]
        end = ready if model.period_ns == 0 else ready // model.period_ns * model.period_ns
        end = min(end, self.day_end_ns)
        if end <= start:
            return
        self.emit(model.name, self.runs.tail(model, start, end))
        self._moved(model.name, end, until)

    def _moved(self, name: str, ns: float, until: dict[str, float]) -> None:
        until[name] = ns
        with self._changed:
            self.until[name] = ns
            self._changed.notify_all()

    def _parents_changed(self, stage: Stage, model: LiveModel) -> bool:
        """Whether a live parent's rows changed since the model last read them (the same rows
        give the same result)."""
        versions = self.tables.version
        seen = {parent: versions[parent] for parent in self.reads[model.name]}
        changed = stage.read_versions.get(model.name) != seen
        stage.read_versions[model.name] = seen
        return changed
