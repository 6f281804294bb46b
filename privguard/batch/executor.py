"""Executors: where the chunks of a run are processed.

An :class:`Executor` takes chunks of input paths and hands back, chunk by
chunk, one :class:`~privguard.models.FileResult` per path. All of them run
the same :class:`~privguard.batch.worker.WorkerState` and share one policy
for workers that die (:class:`Tasks`):

* a chunk whose worker died is split, and each of its files is sent once
  more, alone, to a fresh worker;
* a file whose worker dies again is reported ``failed`` with the reason
  ``worker died (signal N)``; the batch goes on;
* a chunk that runs past its time limit (``--file-timeout`` per file) has its
  worker killed and is split the same way; a single file past the limit is
  reported failed;
* a worker whose resident memory grows past its ceiling
  (:class:`~privguard.batch.limits.MemoryCeiling`: its size once set up, plus
  ``--max-file-memory``, plus room for heavy libraries it has not loaded yet)
  is killed, checked every :data:`_WATCH_INTERVAL` seconds, and its chunk split
  the same way; a single file past the ceiling fails with a reason naming it.

:class:`ProcessExecutor` runs its own worker processes (not
``concurrent.futures``, whose pool breaks as a whole when one worker dies)
and knows which task every worker holds, so a death is charged to that task
alone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

from privguard.batch.config import ScrubConfig
from privguard.batch.fsio import close_inherited_locks
from privguard.batch.limits import MemoryCeiling, memory_reason, resident_bytes
from privguard.batch.worker import WorkerState
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

Pairs = list[tuple[Path, FileResult]]
Emit = Callable[[Pairs], None]
_MAX_START_FAILURES = 5
_WATCH_INTERVAL = 0.5
_PREFETCH = 2


@dataclass
class ExecStats:
    deaths: int = 0
    retried: int = 0


class Executor(Protocol):
    """Processes chunks; calls ``emit`` once per finished chunk with a result for each of its paths."""

    def run(self, chunks: Iterator[list[Path]], emit: Emit) -> None: ...


@dataclass
class Task:
    paths: list[Path]
    retry: bool = False
    """True when this is the file's second (last) try after a worker died."""


def failed(paths: list[Path], reason: str) -> Pairs:
    return [(p, FileResult(input=str(p), status="failed", reason=reason)) for p in paths]


def death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"worker died (signal {-exitcode})"
    return f"worker died (exit code {exitcode})"


@dataclass
class Tasks:
    """The queue of work, with the retry policy for dead and overdue workers."""

    chunks: Iterator[list[Path]]
    stats: ExecStats
    file_timeout: float
    queue: deque[Task] = field(default_factory=deque)
    exhausted: bool = False

    def next(self) -> Task | None:
        if self.queue:
            return self.queue.popleft()
        if self.exhausted:
            return None
        chunk = next(self.chunks, None)
        if chunk is None:
            self.exhausted = True
            return None
        return Task(chunk)

    def done(self) -> bool:
        return self.exhausted and not self.queue

    def deadline(self, task: Task) -> float | None:
        return time.monotonic() + self.file_timeout * len(task.paths) if self.file_timeout else None

    def died(self, task: Task, reason: str) -> Pairs:
        """The worker holding ``task`` died: split and retry, or report the file failed."""
        self.stats.deaths += 1
        if len(task.paths) > 1 or not task.retry:
            self.stats.retried += len(task.paths)
            self.queue.extendleft(Task([p], retry=True) for p in reversed(task.paths))
            return []
        return failed(task.paths, reason)

    def over_memory(self, task: Task, limit: int) -> Pairs:
        """``task``'s worker grew past the memory ceiling (and was killed)."""
        if len(task.paths) > 1:
            self.stats.retried += len(task.paths)
            self.queue.extendleft(Task([p], retry=True) for p in reversed(task.paths))
            return []
        return failed(task.paths, memory_reason(limit))

    def overdue(self, task: Task) -> Pairs:
        """``task`` ran past its time limit (its worker was killed)."""
        if len(task.paths) > 1:
            self.stats.retried += len(task.paths)
            self.queue.extendleft(Task([p], retry=True) for p in reversed(task.paths))
            return []
        return failed(
            task.paths,
            f"took longer than the per-file time limit ({self.file_timeout:g} s); raise --file-timeout",
        )

    def requeue(self, sent: deque[Task]) -> None:
        """Tasks sent to a worker that never started them: back to the front, unchanged."""
        self.queue.extendleft(reversed(sent))

    def drain(self, reason: str) -> Pairs:
        """No worker can run: every remaining file fails with ``reason``."""
        pairs: Pairs = []
        while (task := self.next()) is not None:
            pairs.extend(failed(task.paths, reason))
        return pairs


class InlineExecutor:
    """Runs every chunk in this process: no isolation, no memory or time limit."""

    def __init__(self, cfg: ScrubConfig, key: ProjectKey) -> None:
        self.cfg = cfg
        self.key = key

    def run(self, chunks: Iterator[list[Path]], emit: Emit) -> None:
        state = WorkerState(self.cfg, self.key)
        try:
            for chunk in chunks:
                emit(list(zip(chunk, state.process(chunk), strict=True)))
        finally:
            state.close()


# -- local worker processes -----------------------------------------------------------------


def _die_with(parent: int) -> None:
    """Linux: have the kernel kill this worker when its driver dies (so no orphan keeps writing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(1)


def _worker_main(conn: Connection, cfg: ScrubConfig, key: ProjectKey, parent: int) -> None:
    """A worker process: build the state, then process chunks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers itself
    _die_with(parent)
    close_inherited_locks()
    try:
        state = WorkerState(cfg, key)
    except BaseException as exc:  # reported to the parent, which decides
        conn.send(("error", f"{type(exc).__name__}"))
        return
    pid = os.getpid()
    conn.send(("ready", pid, resident_bytes(pid), state.may_load(), state.loaded()))
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg is None:
                break
            results = state.process(msg)
            # Measured here, before the next chunk (sent ahead) starts: the driver's new baseline
            # if this chunk loaded a heavy library.
            conn.send(("done", results, resident_bytes(pid), state.loaded()))
    finally:
        state.close()


@dataclass
class _Slot:
    proc: BaseProcess
    conn: Connection
    ready: bool = False
    tasks: deque[Task] = field(default_factory=deque)
    """Sent to the worker, in order; the first is the one it is working on."""
    deadline: float | None = None
    """When the first task runs out of time."""
    memory: MemoryCeiling | None = None
    """The worker's resident-memory ceiling, once it is ready."""

    @property
    def task(self) -> Task | None:
        return self.tasks[0] if self.tasks else None


class ProcessExecutor:
    """``cfg.workers`` worker processes of our own, each replaced when it dies.

    Each worker has up to :data:`_PREFETCH` chunks sent ahead (so it never waits
    for the driver); only the first is under way, so a death is charged to it
    alone and the others go back to the queue untouched.
    """

    def __init__(self, cfg: ScrubConfig, key: ProjectKey, stats: ExecStats) -> None:
        self.cfg = cfg
        self.key = key
        self.stats = stats
        # OCR workers hold torch, which must not be forked after its threads start: spawn them.
        # Header-only workers fork (cheaper start, modules already imported).
        ocr = cfg.pixels is not None and cfg.pixels.ocr != "off"
        method = "spawn" if ocr or os.name != "posix" else "fork"
        self.ctx: Any = multiprocessing.get_context(method)
        self.start_failures = 0

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=_worker_main, args=(child, self.cfg, self.key, os.getpid()), daemon=True
        )
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def run(self, chunks: Iterator[list[Path]], emit: Emit) -> None:
        tasks = Tasks(chunks, self.stats, self.cfg.file_timeout)
        slots = [self._start() for _ in range(self.cfg.workers)]
        try:
            self._loop(slots, tasks, emit)
        finally:
            _stop(slots)

    def _feed(self, s: _Slot, tasks: Tasks) -> None:
        while s.ready and len(s.tasks) < _PREFETCH:
            task = tasks.next()
            if task is None:
                return
            if not s.tasks:
                s.deadline = tasks.deadline(task)
            s.tasks.append(task)
            with contextlib.suppress(OSError):  # a worker that is gone is seen by the loop
                s.conn.send(task.paths)

    def _loop(self, slots: list[_Slot], tasks: Tasks, emit: Emit) -> None:
        while True:
            for s in slots:
                self._feed(s, tasks)
            if tasks.done() and all(not s.tasks for s in slots):
                return
            deadlines = [s.deadline for s in slots if s.tasks and s.deadline is not None]
            if any(s.tasks and s.memory is not None for s in slots):
                deadlines.append(time.monotonic() + _WATCH_INTERVAL)
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = set(wait([s.conn for s in slots] + [s.proc.sentinel for s in slots], timeout))
            for i, s in enumerate(slots):
                if s.conn in ready:
                    try:
                        msg = s.conn.recv()
                    except (EOFError, OSError):
                        msg = None
                    if msg is not None:
                        self._message(s, msg, tasks, emit)
                        if msg[0] != "error":
                            continue  # buffered messages first: a death is seen after them
                if s.conn in ready or s.proc.sentinel in ready:
                    slots[i] = self._replace(s, tasks, emit)
                elif s.tasks and s.deadline is not None and time.monotonic() >= s.deadline:
                    slots[i] = self._stop_worker(s, tasks, emit, tasks.overdue)
                elif s.tasks and self._over_memory(s):
                    slots[i] = self._stop_worker(
                        s, tasks, emit, lambda t: tasks.over_memory(t, self.cfg.max_file_memory)
                    )

    def _over_memory(self, s: _Slot) -> bool:
        if s.memory is None or s.proc.pid is None:
            return False
        return s.memory.exceeded(resident_bytes(s.proc.pid))

    def _message(self, s: _Slot, msg: tuple[Any, ...], tasks: Tasks, emit: Emit) -> None:
        if msg[0] == "ready":
            _, _pid, rss, may_load, loaded = msg
            s.ready = True
            s.memory = MemoryCeiling(self.cfg.max_file_memory, may_load)
            s.memory.ready(rss, loaded)
        elif msg[0] == "done" and s.tasks:
            if s.memory is not None:
                s.memory.chunk_done(msg[2], msg[3])
            task = s.tasks.popleft()
            s.deadline = tasks.deadline(s.tasks[0]) if s.tasks else None
            emit(list(zip(task.paths, msg[1], strict=True)))

    def _stop_worker(self, s: _Slot, tasks: Tasks, emit: Emit, charge: Callable[[Task], Pairs]) -> _Slot:
        """Kill ``s``'s worker for what its current task did; charge that task, requeue the rest."""
        _kill(s)
        head = s.tasks.popleft()
        tasks.requeue(s.tasks)
        s.tasks.clear()
        pairs = charge(head)
        if pairs:
            emit(pairs)
        return self._replace(s, tasks, emit)

    def _replace(self, s: _Slot, tasks: Tasks, emit: Emit) -> _Slot:
        """``s``'s worker is gone (or going): charge its current task, requeue the rest, start another."""
        s.proc.join(timeout=10)
        if s.proc.is_alive():
            _kill(s)
        s.conn.close()
        if s.tasks:
            head = s.tasks.popleft()
            tasks.requeue(s.tasks)
            s.tasks.clear()
            pairs = tasks.died(head, death_reason(s.proc.exitcode))
            if pairs:
                emit(pairs)
        elif not s.ready:
            self.start_failures += 1
            if self.start_failures > _MAX_START_FAILURES:
                pairs = tasks.drain("no worker process could start")
                if pairs:
                    emit(pairs)
        elif s.proc.exitcode not in (0, None):
            self.stats.deaths += 1  # died idle: nothing to charge
        return self._start()


def _kill(s: _Slot) -> None:
    if s.proc.is_alive() and s.proc.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.join(timeout=10)


def _stop(slots: list[_Slot]) -> None:
    for s in slots:
        with contextlib.suppress(OSError):
            s.conn.send(None)
    end = time.monotonic() + 10
    for s in slots:
        s.proc.join(timeout=max(0.1, end - time.monotonic()))
        if s.proc.is_alive():
            _kill(s)
        s.conn.close()
