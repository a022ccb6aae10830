"""The warm engine: resolve each target's edge once, then GET path × target × encoding.

Used by the prewarm worker and by the CLI (``edgefill warm``) alike, so nothing here knows
about Lambda, SQS or Powertools: it takes a plan and a ``WarmContext`` (configuration,
resolver, edge client, settings, deadline), and returns a ``WarmReport``.

Stopping: the caller may set ``WarmContext.cancel`` (a ``threading.Event``; ``edgefill warm``
sets it on Ctrl-C). From then on no task starts and no request is retried; requests in
flight finish (or time out), and the tasks never started are reported in
``WarmReport.cancelled``, neither failed nor to be sent again by this run. The engine
never installs a signal handler: it only reads the event.

Scheduling: tasks sit on one board grouped by edge. Over HTTP/1.1 (an ``EdgeClient``)
``concurrency`` worker threads take them, each with its own keep-alive connection: a
worker keeps taking tasks for the edge it is on, so its connection is reused; when that
edge runs dry it moves to the edge with the most work left per worker, so the run ends
evenly (connections per edge never exceed ``concurrency``). Over HTTP/2 (the client being
an ``Http2EdgeClient``) no thread is spent per stream: one driver thread (``_Driver``)
keeps ``settings.workers`` tasks in flight (``streams``; at most ``streams_per_edge`` on
one edge, all of an edge's streams on one connection) through ``Http2EdgeClient.submit``,
whose outcomes the connections' I/O threads hand back on a queue; the client holds them
under each edge's own ``SETTINGS_MAX_CONCURRENT_STREAMS`` and keeps HTTP/1.1 fallback
requests under ``concurrency``. Which protocol served each task, and the edge's stream
limit, are counted per target (``TargetTotals.protocols``, ``stream_limit``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import queue
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from shared.backoff import backoff_with_jitter
from shared.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_REQUEST_ATTEMPTS,
    DEFAULT_WARM_STREAMS,
    DEFAULT_WARM_STREAMS_PER_EDGE,
    PrewarmConfig,
)
from shared.edge_http import EdgeClient, EdgeError, EdgeResponse
from shared.edge_http2 import Http2EdgeClient
from shared.edns import Edge, EdgeResolver, Resolution, ResolveError, resolve_edges
from shared.messages import ACCEPT_ENCODING, is_pop_code

BACKOFF_BASE_SECONDS: Final = 0.2
BACKOFF_CAP_SECONDS: Final = 5.0
# A worker moving to another edge opens a connection there: one round trip for TCP and
# one for TLS, the time of about two requests on a kept-alive connection.
MOVE_COST_REQUESTS: Final = 2
NOT_STARTED: Final = "not started: the time budget ran out"
# How often a worker waiting for a target's answer looks at ``cancel`` (nobody notifies
# the board when an Event is set from outside).
CANCEL_POLL_SECONDS: Final = 0.05
# A ``max_bytes`` run: once the bytes downloaded reach the cap no new task starts (those
# in flight finish, so a run may pass the cap by up to ``concurrency`` objects). The tasks
# left out go to ``WarmReport.capped``, never to ``failures``: nothing retries them.
_BAD_PATH_CHARACTER = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True, slots=True)
class WarmTask:
    """One request to make: ``path`` at ``target``'s edge, as ``encoding``."""

    path: str
    target: str
    encoding: str


@dataclass(frozen=True, slots=True)
class WarmPlan:
    """The cross product paths × targets × encodings, requested as ``host``."""

    paths: tuple[str, ...]
    targets: tuple[str, ...]
    encodings: tuple[str, ...]
    host: str

    def tasks(self) -> list[WarmTask]:
        return [
            WarmTask(path, target, encoding)
            for target in dict.fromkeys(self.targets)
            for encoding in dict.fromkeys(self.encodings)
            for path in dict.fromkeys(self.paths)
        ]

    @property
    def size(self) -> int:
        return len(set(self.paths)) * len(set(self.targets)) * len(set(self.encodings))


@dataclass(frozen=True, slots=True)
class WarmSettings:
    """How hard to push: tasks in flight, tries per request, backoff and timeouts.

    ``http2``: tasks in flight are HTTP/2 streams, ``streams`` of them in total and at most
    ``streams_per_edge`` on one edge; else ``concurrency`` HTTP/1.1 workers."""

    concurrency: int = DEFAULT_CONCURRENCY
    request_attempts: int = DEFAULT_REQUEST_ATTEMPTS
    backoff_base: float = BACKOFF_BASE_SECONDS
    backoff_cap: float = BACKOFF_CAP_SECONDS
    http2: bool = False
    streams: int = DEFAULT_WARM_STREAMS
    streams_per_edge: int = DEFAULT_WARM_STREAMS_PER_EDGE

    @classmethod
    def from_config(cls, config: PrewarmConfig) -> WarmSettings:
        return cls(
            concurrency=config.concurrency,
            request_attempts=config.request_attempts,
            http2=config.http2,
            streams=config.warm_streams,
            streams_per_edge=config.warm_streams_per_edge,
        )

    @property
    def workers(self) -> int:
        """Tasks in flight at once: streams over HTTP/2 (all driven from one thread), worker
        threads (one connection each) over HTTP/1.1."""
        return self.streams if self.http2 else self.concurrency

    @property
    def per_edge(self) -> int:
        """Tasks in flight one edge may have at once."""
        return self.streams_per_edge if self.http2 else self.concurrency


@dataclass(frozen=True, slots=True)
class WarmContext:
    """What every warm of one run shares, so the rounds of an expansion and the passes of
    a tree pass one value on: where targets resolve (``config``, ``resolver``), the edge
    ``client``, how hard to push (``settings``), when to stop starting tasks
    (``deadline``, a ``time.monotonic()`` value; None for no limit) and the retry clock
    (``sleep``, ``jitter``; tests replace them).

    The worker builds one per message (the deadline is its invocation's); ``edgefill
    warm`` builds one per run, with no deadline and a ``cancel`` event its Ctrl-C sets.
    Both build it with ``for_config``, so the settings are always the configuration's.
    What changes from call to call (the plan, the progress callback, the bytes left under
    a cap) stays a parameter."""

    config: PrewarmConfig
    resolver: EdgeResolver
    client: EdgeClient
    settings: WarmSettings = WarmSettings()
    deadline: float | None = None
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    cancel: threading.Event | None = None

    @classmethod
    def for_config(
        cls,
        config: PrewarmConfig,
        resolver: EdgeResolver,
        client: EdgeClient,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> WarmContext:
        """The context of a run under ``config``: its concurrency and request attempts."""
        return cls(
            config,
            resolver,
            client,
            WarmSettings.from_config(config),
            deadline=deadline,
            cancel=cancel,
        )

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What one task came to. ``ok`` only for a 2xx whose body arrived in full."""

    task: WarmTask
    ok: bool
    edge: str | None = None
    status: int | None = None
    x_cache: str | None = None
    pop: str | None = None
    bytes_read: int = 0
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None
    retryable: bool = False
    pop_mismatch: bool = False
    content_type: str | None = None  # tells a playlist or manifest (prewarm_worker/expand)
    protocol: str | None = None  # "h2" or "http/1.1": what carried the last attempt
    stream_limit: int | None = None  # HTTP/2 streams the edge allows at once, when known

    @property
    def hit(self) -> bool:
        return self.x_cache is not None and self.x_cache.lower().startswith("hit")

    @property
    def miss(self) -> bool:
        return self.x_cache is not None and self.x_cache.lower().startswith("miss")


@dataclass
class TargetTotals:
    """Counters for one target."""

    edge: str | None = None
    ok: int = 0
    failed: int = 0
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    pop_mismatches: int = 0
    error: str | None = None
    pop: str | None = None  # the X-Amz-Cf-Pop the edge answered with (the last one seen)
    protocols: dict[str, int] = field(default_factory=dict)  # answers per protocol
    stream_limit: int | None = None  # the least HTTP/2 stream limit seen at the edge

    @property
    def note(self) -> str | None:
        """Why this target warmed slowly, when its edge held the streams down."""
        if self.stream_limit == 0:
            return "the edge allows no HTTP/2 stream: warmed over HTTP/1.1"
        if self.stream_limit == 1:
            return "the edge allows one HTTP/2 stream at a time: warmed one request at a time"
        return None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "edge": self.edge,
            "pop": self.pop,
            "ok": self.ok,
            "failed": self.failed,
            "bytes": self.bytes,
            "hits": self.hits,
            "misses": self.misses,
            "popMismatches": self.pop_mismatches,
        }
        out["protocols"] = dict(self.protocols)
        if self.stream_limit is not None:
            out["streamLimit"] = self.stream_limit
        if self.note is not None:
            out["note"] = self.note
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class WarmReport:
    """Totals by target and every failed task; successes are counted, not kept, so the
    report stays small whatever the plan's size."""

    tasks: int = 0
    targets: dict[str, TargetTotals] = field(default_factory=dict)
    failures: list[TaskResult] = field(default_factory=list)
    dns_queries: int = 0
    connections: int = 0
    seconds: float = 0.0
    resolution: Resolution | None = None
    capped: list[WarmTask] = field(default_factory=list)  # left out by ``max_bytes``
    cancelled: list[WarmTask] = field(default_factory=list)  # never started: ``cancel`` set

    def record(self, result: TaskResult) -> None:
        totals = self.targets.setdefault(result.task.target, TargetTotals())
        totals.edge = totals.edge or result.edge
        totals.pop = result.pop or totals.pop
        if result.protocol is not None and result.status is not None:
            totals.protocols[result.protocol] = totals.protocols.get(result.protocol, 0) + 1
        if result.stream_limit is not None:
            seen = totals.stream_limit
            totals.stream_limit = (
                result.stream_limit if seen is None else min(seen, result.stream_limit)
            )
        if result.ok:
            totals.ok += 1
        else:
            totals.failed += 1
            self.failures.append(result)
        totals.bytes += result.bytes_read
        totals.hits += result.hit
        totals.misses += result.miss
        totals.pop_mismatches += result.pop_mismatch

    @property
    def ok(self) -> int:
        return sum(t.ok for t in self.targets.values())

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.targets.values())

    @property
    def hits(self) -> int:
        return sum(t.hits for t in self.targets.values())

    @property
    def misses(self) -> int:
        return sum(t.misses for t in self.targets.values())

    @property
    def protocols(self) -> dict[str, int]:
        """Answers per protocol ("h2", "http/1.1") over every target."""
        out: dict[str, int] = {}
        for totals in self.targets.values():
            for name, count in totals.protocols.items():
                out[name] = out.get(name, 0) + count
        return out

    @property
    def edges(self) -> dict[str, str]:
        return {t: totals.edge for t, totals in self.targets.items() if totals.edge}

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary a log line or the CLI prints."""
        return {
            "tasks": self.tasks,
            "ok": self.ok,
            "failed": self.failed,
            "bytes": self.bytes,
            "hits": self.hits,
            "misses": self.misses,
            "targetsResolved": len(self.edges),
            "edges": sorted(set(self.edges.values())),
            "dnsQueries": self.dns_queries,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "capped": len(self.capped),
            "cancelled": len(self.cancelled),
            "protocols": self.protocols,
            "targets": {t: totals.as_dict() for t, totals in self.targets.items()},
        }


Progress = Callable[[TaskResult], None]


def warm(
    plan: WarmPlan,
    context: WarmContext,
    progress: Progress | None = None,
    max_bytes: int | None = None,
) -> WarmReport:
    """Warm every task of ``plan``; never raises for a bad task, target or edge.

    ``progress`` is called once per finished task, one call at a time. The context's
    ``deadline`` stops workers from starting new tasks; the tasks left are reported as
    failed, retryable, "not started", so a caller can send them again. ``max_bytes``
    stops new tasks once that many bytes were downloaded; the tasks left are reported in
    ``capped`` (not failed, not to be sent again). Once the context's ``cancel`` is set
    no task starts; those left are reported in ``cancelled``.
    """
    settings = _settings_for(context)
    client = context.client
    started = time.perf_counter()
    connections_before = client.connections
    report = WarmReport(tasks=plan.size)
    lock = threading.Lock()

    def finish(result: TaskResult) -> None:
        with lock:
            report.record(result)
            if progress is not None:
                progress(result)
            # Only a task that downloaded bytes can reach the cap, and those run on the board.
            if max_bytes is not None and result.bytes_read and report.bytes >= max_bytes:
                board.stop()

    # Totals in the plan's target order, whatever order the answers come in.
    targets = tuple(dict.fromkeys(plan.targets))
    for target in targets:
        report.targets[target] = TargetTotals()
    waiting: dict[str, list[WarmTask]] = {target: [] for target in targets}
    for task in plan.tasks():
        problem = _task_problem(task)
        if problem is None:
            waiting[task.target].append(task)
        else:
            finish(TaskResult(task, ok=False, error=problem, retryable=False))

    runnable = sum(len(tasks) for tasks in waiting.values())
    workers = min(settings.workers, runnable)
    board = _TaskBoard(
        context.deadline,
        pending=len(targets),
        concurrency=workers,
        expected=runnable,
        cancel=context.cancel,
        per_edge=settings.per_edge,
    )

    def on_target(target: str, outcome: Edge | ResolveError) -> None:
        tasks = waiting.pop(target, [])
        with lock:
            totals = report.targets[target]
            if isinstance(outcome, ResolveError):
                totals.error = outcome.reason
            else:
                totals.edge = outcome.address
        if isinstance(outcome, ResolveError):
            for task in tasks:
                where = f"{task.path} at {target} ({task.encoding})"
                finish(
                    TaskResult(
                        task, False, error=f"{where}: {outcome.reason}", retryable=outcome.retryable
                    )
                )
        else:
            board.publish(outcome.address, tasks)
        board.settled()

    runner = _TaskRunner(plan.host, client, settings, context.sleep, context.jitter, context.cancel)
    if isinstance(client, Http2EdgeClient):
        # One driver thread keeps every stream busy (see _Driver); it starts before the
        # answers, so each target's edge is warmed as soon as it is known.
        driver = _Driver(board, runner, client, workers, finish)
        board.on_change = driver.wake
        thread = threading.Thread(target=driver.run, name="warm-driver", daemon=True)
        thread.start()
        try:
            resolution = resolve_edges(targets, context.config, context.resolver, on_target)
        finally:
            board.close()
            thread.join()
    else:
        resolution = _run_workers(board, runner, workers, finish, targets, context, on_target)
    report.resolution = resolution
    report.dns_queries = resolution.queries
    _settle_untaken(board, report, finish)
    report.connections = client.connections - connections_before
    report.seconds = time.perf_counter() - started
    return report


def _run_workers(
    board: _TaskBoard,
    runner: _TaskRunner,
    workers: int,
    finish: Callable[[TaskResult], None],
    targets: tuple[str, ...],
    context: WarmContext,
    on_target: Callable[[str, Edge | ResolveError], None],
) -> Resolution:
    """HTTP/1.1: ``workers`` threads, each with its own keep-alive connection, while the
    targets resolve in this thread."""
    # Workers start before the answers: each target's edge is warmed as soon as it is
    # known, so a target whose resolver times out does not hold up the others.
    go = threading.Event()
    with ThreadPoolExecutor(max(workers, 1), thread_name_prefix="warm") as pool:
        for _ in range(workers):
            pool.submit(_work, board, runner, go, finish)
        # Workers wait for the starting gun: the first ones would otherwise hold the GIL
        # setting up TLS while the rest are still being created, and start late.
        go.set()
        try:
            return resolve_edges(targets, context.config, context.resolver, on_target)
        finally:
            board.close()


def _settings_for(context: WarmContext) -> WarmSettings:
    """The context's settings, as HTTP/1.1 ones when its client speaks only HTTP/1.1:
    then one worker per keep-alive connection, as before, never one per stream."""
    settings = context.settings
    if settings.http2 and not isinstance(context.client, Http2EdgeClient):
        return dataclasses.replace(settings, http2=False)
    return settings


def _settle_untaken(
    board: _TaskBoard, report: WarmReport, finish: Callable[[TaskResult], None]
) -> None:
    """Tasks never taken: capped when the byte cap stopped the board, cancelled when the
    caller stopped the run, else not started (the deadline), which is retryable."""
    for edge, task in board.drain():
        if board.stopped:
            report.capped.append(task)
        elif board.cancelled:
            report.cancelled.append(task)
        else:
            finish(TaskResult(task, ok=False, edge=edge, error=NOT_STARTED, retryable=True))


def _task_problem(task: WarmTask) -> str | None:
    """Why ``task`` can never be requested (a bad path or encoding), else None."""
    path = task.path
    where = f"at {task.target} ({task.encoding})"
    if not path:
        return f"path {where}: is empty"
    if not path.startswith("/") or path.startswith("//"):
        return f"path {path[:80]!r} {where}: must start with a single '/'"
    if _BAD_PATH_CHARACTER.search(path):
        return f"path {path[:80]!r} {where}: holds a space or control character"
    if task.encoding not in ACCEPT_ENCODING:
        return f"encoding {task.encoding!r} for {path} at {task.target}: unknown"
    return None


class _TaskBoard:
    """Tasks grouped by edge. Hands a worker more work on its edge while there is some;
    otherwise the edge where it helps most, waiting while targets are still being
    resolved; nothing once the deadline has passed."""

    def __init__(
        self,
        deadline: float | None = None,
        pending: int = 0,
        concurrency: int = 0,
        expected: int = 0,
        cancel: threading.Event | None = None,
        per_edge: int | None = None,
    ) -> None:
        self._deadline = deadline
        self._per_edge = per_edge  # workers one edge may have (its HTTP/2 streams)
        self._cancel = cancel
        self._pending = pending  # targets whose tasks may still arrive
        self._concurrency = concurrency
        self._expected = expected  # tasks of all targets, published or not
        self._ready = threading.Condition()
        self._queues: dict[str, deque[WarmTask]] = {}
        self._published: dict[str, int] = {}
        self._workers: dict[str, int] = {}
        self.stopped = False  # by ``stop``: no task is handed out any more
        # Called after anything that may let a task be taken (the HTTP/2 driver waits on
        # its own queue, not on this board's condition).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        # Called with the lock held.
        self._ready.notify_all()
        if self.on_change is not None:
            self.on_change()

    def stop(self) -> None:
        """Hand out no more tasks (the byte cap was reached)."""
        with self._ready:
            self.stopped = True
            self._changed()

    def add(self, edge: str, task: WarmTask) -> None:
        self.publish(edge, [task])

    def publish(self, edge: str, tasks: Iterable[WarmTask]) -> None:
        with self._ready:
            queue = self._queues.setdefault(edge, deque())
            before = len(queue)
            queue.extend(tasks)
            self._published[edge] = self._published.get(edge, 0) + len(queue) - before
            self._workers.setdefault(edge, 0)
            self._changed()

    def settled(self) -> None:
        """One pending target has published its tasks (or has none)."""
        with self._ready:
            self._pending -= 1
            self._changed()

    def close(self) -> None:
        """No more tasks will come: idle workers may leave."""
        with self._ready:
            self._pending = 0
            self._changed()

    def __len__(self) -> int:
        with self._ready:
            return sum(len(queue) for queue in self._queues.values())

    def drain(self) -> list[tuple[str, WarmTask]]:
        """Remove and return every task not taken."""
        with self._ready:
            left = [(edge, task) for edge, queue in self._queues.items() for task in queue]
            for queue in self._queues.values():
                queue.clear()
            return left

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def take(self, current: str | None) -> tuple[str, WarmTask] | None:
        with self._ready:
            if self._past_deadline() or self.stopped or self.cancelled:
                return None
            if current is not None and self._queues.get(current):
                return current, self._queues[current].popleft()
            if current is not None:
                self._workers[current] -= 1
            while True:
                busiest = self._busiest(moving=current is not None)
                if busiest is not None:
                    self._workers[busiest] += 1
                    return busiest, self._queues[busiest].popleft()
                if self._pending <= 0 or self._past_deadline() or self.stopped:
                    return None
                if self.cancelled:
                    return None
                self._ready.wait(self._wait_time())

    @property
    def resolving(self) -> bool:
        """Targets may still publish tasks."""
        with self._ready:
            return self._pending > 0

    def take_free(self, busy: dict[str, int]) -> tuple[str, WarmTask] | None:
        """The HTTP/2 driver's take: never waits. A task for the edge with the most work
        left per request in flight there (``busy``, the driver's count), among the edges
        below ``per_edge`` (and, while targets resolve, below their share); None when no
        edge may take one now, or the deadline, the byte cap or the cancel stops all."""
        with self._ready:
            if self._past_deadline() or self.stopped or self.cancelled:
                return None
            sharing = self._pending > 0 and self._expected > 0
            best, best_score = None, -1.0
            for edge, queue in self._queues.items():
                if not queue:
                    continue
                running = busy.get(edge, 0)
                if self._per_edge is not None and running >= self._per_edge:
                    continue
                if sharing and running >= self._share(edge):
                    continue
                score = len(queue) / (running + 1)
                if score > best_score:
                    best, best_score = edge, score
            if best is None:
                return None
            return best, self._queues[best].popleft()

    def _share(self, edge: str) -> int:
        # More edges are coming: an edge gets no more than its share of the workers yet,
        # or the first edge known would take them all.
        return max(1, round(self._concurrency * self._published[edge] / self._expected))

    def _busiest(self, moving: bool) -> str | None:
        candidates = [edge for edge, queue in self._queues.items() if queue]
        if self._per_edge is not None:
            candidates = [edge for edge in candidates if self._workers[edge] < self._per_edge]
        if moving:
            # A move costs a new connection, about two requests' time (TCP + TLS).
            # Only join an edge whose own workers need longer than that to finish it.
            candidates = [
                edge
                for edge in candidates
                if len(self._queues[edge]) > MOVE_COST_REQUESTS * self._workers[edge]
            ]
        if self._pending > 0 and self._expected:
            candidates = [edge for edge in candidates if self._workers[edge] < self._share(edge)]
        return max(
            candidates,
            key=lambda edge: len(self._queues[edge]) / (self._workers[edge] + 1),
            default=None,
        )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _wait_time(self) -> float | None:
        left = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
        if self._cancel is None:
            return left
        return CANCEL_POLL_SECONDS if left is None else min(left, CANCEL_POLL_SECONDS)


def _work(
    board: _TaskBoard,
    runner: _TaskRunner,
    go: threading.Event,
    finish: Callable[[TaskResult], None],
) -> None:
    go.wait()
    current: str | None = None
    while (taken := board.take(current)) is not None:
        current, task = taken
        try:
            result = runner.run(task, current)
        except Exception as error:  # one broken task must not stop the rest of the run
            result = TaskResult(task, ok=False, edge=current, error=f"internal error: {error!r}")
        finish(result)


class _TaskRunner:
    """One task: GET with retries on connection errors and 5xx, backoff with jitter."""

    def __init__(
        self,
        host: str,
        client: EdgeClient,
        settings: WarmSettings,
        sleep: Callable[[float], None],
        jitter: Callable[[], float],
        cancel: threading.Event | None = None,
    ) -> None:
        self.host = host
        self.client = client
        self.settings = settings
        self.sleep = sleep
        self.jitter = jitter
        self.cancel = cancel

    def run(self, task: WarmTask, edge: str) -> TaskResult:
        attempts = max(1, self.settings.request_attempts)
        result = TaskResult(task, ok=False, edge=edge)
        for attempt in range(1, attempts + 1):
            result = self._once(task, edge, attempt)
            if result.ok or not _worth_another_try(result) or attempt == attempts:
                return result
            self.sleep(self._backoff(attempt))
            if self.cancel is not None and self.cancel.is_set():
                return result  # stopped: no request starts after the cancel, retries neither
        return result

    def _backoff(self, attempt: int) -> float:
        # Equal jitter: workers hitting one flaky edge spread out (shared/backoff.py).
        return backoff_with_jitter(
            self.settings.backoff_base, attempt - 1, self.settings.backoff_cap, self.jitter()
        )

    def _once(self, task: WarmTask, edge: str, attempt: int) -> TaskResult:
        started = time.perf_counter()
        try:
            response = self.client.get(edge, self.host, task.path, ACCEPT_ENCODING[task.encoding])
        except EdgeError as error:
            return self.result_of(task, edge, attempt, started, error)
        return self.result_of(task, edge, attempt, started, response)

    def worth_retrying(self, result: TaskResult, attempt: int) -> bool:
        """Whether the task that came to ``result`` at ``attempt`` is tried again now."""
        if result.ok or attempt >= max(1, self.settings.request_attempts):
            return False
        return _worth_another_try(result)

    @staticmethod
    def result_of(
        task: WarmTask,
        edge: str,
        attempt: int,
        started: float,
        outcome: EdgeResponse | EdgeError,
    ) -> TaskResult:
        """What one attempt came to, from the client's answer (``started``: perf_counter)."""
        where = f"{task.path} at {task.target} ({edge}, {task.encoding})"
        if isinstance(outcome, EdgeError):
            return TaskResult(
                task,
                ok=False,
                edge=edge,
                bytes_read=outcome.bytes_read,
                seconds=time.perf_counter() - started,
                attempts=attempt,
                error=f"{where}: {outcome.reason}",
                retryable=outcome.retryable,
            )
        return _judge(task, edge, outcome, attempt, where)


class _Flight:
    """One attempt of one task in flight on the HTTP/2 driver."""

    __slots__ = ("attempt", "edge", "started", "task")

    def __init__(self, task: WarmTask, edge: str, attempt: int) -> None:
        self.task = task
        self.edge = edge
        self.attempt = attempt
        self.started = time.perf_counter()


class _Driver:
    """HTTP/2 warms from one thread: up to ``workers`` tasks in flight (each edge at most
    ``per_edge``, the board's rule), each a ``Http2EdgeClient.submit`` whose outcome the
    connection's I/O thread puts on ``events``; the driver judges it, finishes the task or
    schedules its retry, and fills the freed slot. No thread per stream: the threads are
    this one, one I/O thread per connection, and the client's HTTP/1.1 pool.

    A retry keeps its task's slot while it waits out its backoff on a timer heap (so the
    bounds hold as with worker threads) and never sleeps the driver. The context's
    ``sleep`` is honoured as the retry clock: the default, ``time.sleep``, means real
    time (the heap's due times bound the driver's wait); an injected one (the tests') is
    called with the backoff and the retry is due at once, so it must not block. Once
    ``cancel`` is set no request starts, retries neither: a task waiting for its retry
    is finished with the result of its last attempt."""

    def __init__(
        self,
        board: _TaskBoard,
        runner: _TaskRunner,
        client: Http2EdgeClient,
        workers: int,
        finish: Callable[[TaskResult], None],
    ) -> None:
        self.board = board
        self.runner = runner
        self.client = client
        self.workers = max(1, workers)
        self.finish = finish
        # Outcomes (flight, EdgeResponse | EdgeError | TaskResult) and wake-ups (None).
        # Bounded by ``workers``: each slot has at most one outcome on its way.
        self.events: queue.SimpleQueue[tuple[_Flight, Any] | None] = queue.SimpleQueue()
        self.busy: dict[str, int] = {}  # tasks per edge in flight or waiting for a retry
        self.total = 0
        self.timers: list[tuple[float, int, _Flight, TaskResult]] = []  # (due, n, next, last)
        self._timer_count = 0
        self._real_time = runner.sleep is time.sleep

    def wake(self) -> None:
        self.events.put(None)

    def run(self) -> None:
        while True:
            self._fire_timers()
            self._fill()
            if self.total == 0 and not self.board.resolving:
                return  # nothing in flight, and no task can come any more
            try:
                item = self.events.get(timeout=self._wait_time())
            except queue.Empty:
                continue
            while True:  # everything that arrived meanwhile, then one fill: one flight
                if item is not None:
                    self._complete_safely(*item)
                try:
                    item = self.events.get_nowait()
                except queue.Empty:
                    break

    def _wait_time(self) -> float | None:
        wait = None
        if self.timers:
            wait = max(0.0, self.timers[0][0] - time.monotonic())
        if self.runner.cancel is not None:  # nobody tells us when it is set
            wait = CANCEL_POLL_SECONDS if wait is None else min(wait, CANCEL_POLL_SECONDS)
        return wait

    def _fill(self) -> None:
        started = False
        while self.total < self.workers:
            taken = self.board.take_free(self.busy)
            if taken is None:
                break
            edge, task = taken
            self.busy[edge] = self.busy.get(edge, 0) + 1
            self.total += 1
            self._start(_Flight(task, edge, 1))
            started = True
        if started:
            self.client.flush()  # the burst goes out in one write per connection

    def _start(self, flight: _Flight) -> None:
        put = self.events.put

        def done(outcome: EdgeResponse | EdgeError) -> None:
            put((flight, outcome))  # on the I/O thread: hand over, nothing more

        task = flight.task
        try:
            self.client.submit(
                flight.edge,
                self.runner.host,
                task.path,
                ACCEPT_ENCODING[task.encoding],
                done,
                flush=False,
            )
        except Exception as error:  # one broken task must not stop the rest of the run
            failed = TaskResult(
                task, ok=False, edge=flight.edge, error=f"internal error: {error!r}"
            )
            put((flight, failed))

    def _complete_safely(self, flight: _Flight, outcome: Any) -> None:
        try:
            self._complete(flight, outcome)
        except Exception as error:  # one broken task must not stop the rest of the run
            error_text = f"internal error: {error!r}"
            self._end(
                flight.edge, TaskResult(flight.task, ok=False, edge=flight.edge, error=error_text)
            )

    def _complete(self, flight: _Flight, outcome: EdgeResponse | EdgeError | TaskResult) -> None:
        if isinstance(outcome, TaskResult):
            result = outcome
        else:
            result = self.runner.result_of(
                flight.task, flight.edge, flight.attempt, flight.started, outcome
            )
        cancelled = self.runner.cancel is not None and self.runner.cancel.is_set()
        if cancelled or not self.runner.worth_retrying(result, flight.attempt):
            self._end(flight.edge, result)
            return
        delay = self.runner._backoff(flight.attempt)
        due = time.monotonic() + delay
        if not self._real_time:
            self.runner.sleep(delay)  # an injected clock: it says the backoff has passed
            due = 0.0
        self._timer_count += 1
        retry = _Flight(flight.task, flight.edge, flight.attempt + 1)
        heapq.heappush(self.timers, (due, self._timer_count, retry, result))

    def _fire_timers(self) -> None:
        cancelled = self.runner.cancel is not None and self.runner.cancel.is_set()
        now = time.monotonic()
        started = False
        while self.timers and (cancelled or self.timers[0][0] <= now):
            _, _, retry, last = heapq.heappop(self.timers)
            if cancelled:
                self._end(retry.edge, last)  # stopped: no retry starts after the cancel
            else:
                retry.started = time.perf_counter()
                self._start(retry)
                started = True
        if started:
            self.client.flush()

    def _end(self, edge: str, result: TaskResult) -> None:
        self.busy[edge] -= 1
        self.total -= 1
        # A progress callback that raises has had its task recorded (finish records
        # first); the driver, which every other task needs, carries on.
        with contextlib.suppress(Exception):
            self.finish(result)


def _worth_another_try(result: TaskResult) -> bool:
    """Retry now on a broken connection, a cut body or a 5xx; not on a 4xx or 3xx, which
    is CloudFront's considered answer for the moment (the re-enqueue comes back later)."""
    return result.retryable and not 300 <= (result.status or 0) < 500


def _judge(
    task: WarmTask, edge: str, response: EdgeResponse, attempt: int, where: str
) -> TaskResult:
    pop = response.headers.get("X-Amz-Cf-Pop")
    mismatch = is_pop_code(task.target) and pop is not None and pop.upper() != task.target.upper()
    error = None
    if not 200 <= response.status < 300:
        error = f"{where}: status {response.status}"
    elif not response.complete:
        error = (
            f"{where}: body ended after {response.bytes_read} of {response.content_length} bytes"
        )
    return TaskResult(
        task,
        ok=error is None,
        edge=edge,
        status=response.status,
        x_cache=response.headers.get("X-Cache"),
        pop=pop,
        bytes_read=response.bytes_read,
        seconds=response.seconds,
        attempts=attempt,
        error=error,
        # Any answer but a success may change later (a 404 negatively cached right after
        # the backfill, an origin 5xx), so the failed task is worth re-enqueueing.
        retryable=error is not None,
        pop_mismatch=mismatch,
        content_type=response.headers.get("Content-Type"),
        protocol=response.protocol,
        stream_limit=response.stream_limit,
    )


def plan_from(
    paths: Iterable[str],
    targets: Iterable[str],
    encodings: Iterable[str],
    host: str,
) -> WarmPlan:
    """A plan from any iterables (the CLI's arguments, a parsed message)."""
    return WarmPlan(tuple(paths), tuple(targets), tuple(encodings), host)
