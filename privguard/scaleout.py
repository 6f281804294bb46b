"""Scale-out over a Ray cluster for ``privguard scrub --executor ray``.

Each Ray actor holds one :class:`~privguard.deidentify.Deidentifier` (the
profile compiled and, with OCR, the model loaded once) and processes chunks
of files, exactly as a local worker process does. The driver keeps the walk,
the journal, the report and the summary, so resume and reporting behave the
same. Inputs and the output folder must be reachable under the same paths on
every node (a shared file system).

The project key reaches the actors through Ray's object transfer; use Ray's
TLS (``RAY_USE_TLS``) when the cluster spans machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privguard.errors import ConfigError
from privguard.models import FileResult

if TYPE_CHECKING:
    from privguard.batch import ScrubConfig
    from privguard.pseudonym.keys import ProjectKey


class _Worker:
    """The actor body: one Deidentifier per actor."""

    def __init__(self, cfg: ScrubConfig, key: ProjectKey) -> None:
        import warnings

        from privguard.batch import make_deidentifier

        warnings.simplefilter("ignore")
        self.deid = make_deidentifier(cfg, key)

    def files(self, paths: list[str], out: str, dry_run: bool) -> list[dict[str, Any]]:
        results = self.deid.files([Path(p) for p in paths], Path(out), dry_run=dry_run)
        return [r.model_dump() for r in results]


def run_ray(
    paths: Iterator[Path],
    cfg: ScrubConfig,
    key: ProjectKey,
    record: Callable[[FileResult, Path | None], None],
) -> None:
    """Process ``paths`` on Ray actors, ``cfg.workers`` of them, calling ``record`` for each result."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'privguard[ray]'") from None
    from privguard.batch import chunks

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
        actor = ray.remote(num_cpus=1)(_Worker)
        pool = ActorPool([actor.remote(cfg, key) for _ in range(cfg.workers)])
        out = str(cfg.out)
        submitted: dict[int, list[Path]] = {}
        it = chunks(paths, cfg.chunk_size)
        pending = 0

        def submit(chunk: list[Path]) -> None:
            nonlocal pending
            submitted[pending] = chunk
            pool.submit(lambda a, v: a.files.remote(*v), ([str(p) for p in chunk], out, cfg.dry_run))
            pending += 1

        for _ in range(cfg.workers * 2):  # keep every actor busy, with one chunk queued each
            chunk = next(it, None)
            if chunk is None:
                break
            submit(chunk)
        done = 0
        while pool.has_next():  # type: ignore[no-untyped-call]
            chunk = submitted.pop(done)  # results come back in submission order
            done += 1
            try:
                results = [FileResult.model_validate(r) for r in pool.get_next()]
            except Exception as exc:  # an actor died: report its files, go on with the rest
                reason = f"worker failed ({type(exc).__name__})"
                results = [FileResult(input=str(p), status="failed", reason=reason) for p in chunk]
            for path, res in zip(chunk, results, strict=True):
                record(res, path)
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
    finally:
        if started:
            ray.shutdown()
