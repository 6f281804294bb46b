"""Scale-out over a Ray cluster for ``privguard scrub --executor ray``.

Each Ray actor holds one :class:`~privguard.batch.worker.WorkerState` (set up
by the same :func:`~privguard.batch.worker.setup_worker` as a local worker
process, so OCR threads are shared out the same way) and processes chunks of
files. The driver keeps the walk, the journal, the report and the summary,
so resume and reporting behave the same. An actor that dies is replaced and
its chunk retried file by file, as in :mod:`privguard.batch.executor`; a chunk
that runs past its time limit (``--file-timeout`` per file) has its actor
killed (``ray.kill``) and is split and retried the same way, a single file
past the limit is reported failed. Inputs and the output folder must be
reachable under the same paths on every node (a shared file system). Actors
get the inflate bound but no memory ceiling: the driver does not watch their
resident memory (Ray's own memory monitor kills a task that takes a node's
memory).

The project key reaches the actors through Ray's object transfer; use Ray's
TLS (``RAY_USE_TLS``) when the cluster spans machines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from privguard.batch.config import ScrubConfig
from privguard.batch.executor import Emit, ExecStats, Task, Tasks
from privguard.batch.worker import WorkerState
from privguard.errors import ConfigError
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey


class _Actor:
    """The actor body."""

    def __init__(self, cfg: ScrubConfig, key: ProjectKey) -> None:
        self.state = WorkerState(cfg, key)

    def process(self, paths: list[str]) -> list[dict[str, Any]]:
        # ``digests`` is excluded from dumps (never in reports); the audit log needs it, so it travels too.
        return [
            {**r.model_dump(), "digests": r.digests.model_dump() if r.digests is not None else None}
            for r in self.state.process([Path(p) for p in paths])
        ]


class RayExecutor:
    """``cfg.workers`` Ray actors, each replaced when it dies."""

    def __init__(self, cfg: ScrubConfig, key: ProjectKey, stats: ExecStats) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'privguard[ray]'") from None
        self.cfg = cfg
        self.key = key
        self.stats = stats

    def run(self, chunks: Iterator[list[Path]], emit: Emit) -> None:
        import ray
        from ray.exceptions import RayError

        cfg = self.cfg
        started = False
        if not ray.is_initialized():
            ray.init(
                address=cfg.ray_address,
                num_cpus=cfg.workers if cfg.ray_address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            started = True
        try:
            actor_cls = ray.remote(num_cpus=1)(_Actor)
            tasks = Tasks(chunks, self.stats, cfg.file_timeout or 0.0)
            actors = [actor_cls.remote(cfg, self.key) for _ in range(cfg.workers)]
            running: dict[Any, tuple[int, Task, float | None]] = {}

            def feed(slot: int) -> None:
                task = tasks.next()
                if task is not None:
                    names = [str(p) for p in task.paths]
                    ref = actors[slot].process.remote(names)  # type: ignore[attr-defined]
                    running[ref] = (slot, task, tasks.deadline(task))

            def replace(slot: int) -> None:
                actors[slot] = actor_cls.remote(cfg, self.key)

            for slot in range(len(actors)):
                feed(slot)
            while running:
                deadlines = [d for _, _, d in running.values() if d is not None]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                ready, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
                if not ready:  # a chunk ran past its time limit: kill its actor, split the chunk
                    now = time.monotonic()
                    for ref, (slot, task, deadline) in list(running.items()):
                        if deadline is not None and now >= deadline:
                            del running[ref]
                            ray.kill(actors[slot], no_restart=True)  # type: ignore[arg-type]
                            pairs = tasks.overdue(task)
                            if pairs:
                                emit(pairs)
                            replace(slot)
                            feed(slot)
                    continue
                slot, task, _ = running.pop(ready[0])
                try:
                    results = [FileResult.model_validate(r) for r in ray.get(ready[0])]
                    emit(list(zip(task.paths, results, strict=True)))
                except RayError as exc:  # the actor died: replace it, retry its files alone
                    pairs = tasks.died(task, f"worker died ({type(exc).__name__})")
                    if pairs:
                        emit(pairs)
                    replace(slot)
                feed(slot)
        finally:
            if started:
                ray.shutdown()
