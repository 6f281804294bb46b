"""One worker's set-up and its work on one chunk of files (the same for every executor).

:func:`setup_worker` is run once in every worker, whatever runs it (a local
process, a Ray actor, or this process): it silences pydicom's warnings, gives
the OCR engine its share of the cores. :class:`WorkerState` then de-identifies chunks: each file is
written into the worker's staging folder under ``OUT/.privguard/staging/``
by :class:`~privguard.deidentifier.Deidentifier`, then moved into ``OUT``
without following links and made durable (:func:`~privguard.batch.fsio.place`).
It also says which heavy libraries it may load on first use and which it has
loaded, for the driver's memory ceiling (:class:`~privguard.batch.limits.MemoryCeiling`).
"""

from __future__ import annotations

import os
import shutil
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from privguard.batch.config import ScrubConfig
from privguard.batch.fsio import Placer, open_root
from privguard.batch.journal import JOURNAL_DIR
from privguard.batch.limits import inflated_size_exceeds, loaded_libraries, memory_reason
from privguard.cores import usable_cores
from privguard.deidentifier import Deidentifier
from privguard.digests import attach
from privguard.errors import PrivguardError
from privguard.models import FileDigests, FileResult
from privguard.pseudonym.keys import ProjectKey

STAGING = "staging"
_MEMORY = "unexpected error (MemoryError)"
#: Input and output bytes a chunk may hold to hash while its outputs sync; beyond it they are hashed at
#: once, while in the cache (holding whole chunks, 64 MiB, cost more CPU in cold hashing than it saved).
HOLD_DIGEST_BYTES = 8 << 20


def make_deidentifier(cfg: ScrubConfig, key: ProjectKey) -> Deidentifier:
    return Deidentifier(
        cfg.profile,
        key,
        project=cfg.project,
        vault=cfg.vault,
        options=set(cfg.options),
        pixels=cfg.pixels,
        digests=cfg.digests and not cfg.dry_run,
    )


def ocr_threads(cfg: ScrubConfig) -> int:
    """Threads each worker's OCR engine gets: the usable cores shared among the workers."""
    return max(1, usable_cores() // cfg.workers)


def setup_worker(cfg: ScrubConfig) -> None:
    """What every worker does once before it builds its de-identifier."""
    # N OCR workers share the machine's cores: give each torch its share, not all of them.
    os.environ.setdefault("PRIVGUARD_OCR_THREADS", str(ocr_threads(cfg)))
    warnings.simplefilter("ignore")  # pydicom warns about odd inputs; the report says what matters


class WorkerState:
    """A worker's de-identifier and staging folder."""

    def __init__(self, cfg: ScrubConfig, key: ProjectKey) -> None:
        setup_worker(cfg)
        self.cfg = cfg
        self.deid = make_deidentifier(cfg, key)
        if self.deid.digests:
            self.deid.hold_digests = HOLD_DIGEST_BYTES
        self.staging = cfg.out / JOURNAL_DIR / STAGING / f"{socket.gethostname()}-{os.getpid()}"
        self._out_fd: int | None = None
        self._syncer: ThreadPoolExecutor | None = None

    def may_load(self) -> frozenset[str]:
        """The heavy libraries this worker may load on first use (see :mod:`privguard.batch.limits`)."""
        libs: set[str] = set()
        if self.deid.pixel_stage is not None:  # OCR, and the classifier on what it reads
            libs |= {"easyocr", "presidio_analyzer"}
        if any(o.value.startswith("clean_") for o in self.deid.plan.options):  # the Clean options' classifier
            libs.add("presidio_analyzer")
        return frozenset(libs)

    @staticmethod
    def loaded() -> frozenset[str]:
        return loaded_libraries()

    def close(self) -> None:
        if self._syncer is not None:
            self._syncer.shutdown()
            self._syncer = None
        self.deid.close()
        if self._out_fd is not None:
            os.close(self._out_fd)
            self._out_fd = None
        if not self.cfg.dry_run:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _out(self) -> int:
        if self._out_fd is None:
            self._out_fd = open_root(self.cfg.out)
        return self._out_fd

    def process(self, paths: list[Path]) -> list[FileResult]:
        """De-identify ``paths``; one result each, in order. Never raises for a file's fault."""
        cfg = self.cfg
        results: list[FileResult | None] = [None] * len(paths)
        todo: list[int] = []
        inflate_limit = cfg.max_file_memory // 2
        for i, p in enumerate(paths):
            if inflated_size_exceeds(p, inflate_limit):
                results[i] = FileResult(
                    input=str(p),
                    status="failed",
                    reason="the deflated data set inflates to more than half the per-file memory ceiling "
                    "(a deflate bomb?); raise --max-file-memory to process it",
                )
            else:
                todo.append(i)
        if todo:
            got = self._files([paths[i] for i in todo])
            for i, res in zip(todo, got, strict=True):
                results[i] = res
        # A chunk shares the ceiling: a file that ran out of memory beside others gets a try alone.
        if len(paths) > 1:
            for i, got_res in enumerate(results):
                if got_res is not None and got_res.status == "failed" and got_res.reason == _MEMORY:
                    results[i] = self._files([paths[i]])[0]
        final: list[FileResult] = []
        placer = Placer(self.staging, self._out()) if not cfg.dry_run else None
        for p, maybe in zip(paths, results, strict=True):
            res = (
                maybe if maybe is not None else FileResult(input=str(p), status="failed", reason="no result")
            )
            if res.status == "failed" and res.reason == _MEMORY:
                res = res.model_copy(update={"reason": memory_reason(cfg.max_file_memory)})
            elif res.status == "ok" and res.output and not cfg.dry_run:
                assert placer is not None
                res = self._place(res, placer)
            final.append(res)
        if placer is not None:
            try:
                digests = self._sync(placer)  # before the driver journals any of them
                final = attach(final, digests)
            except (OSError, PrivguardError) as exc:
                reason = f"the output folder cannot be synced ({type(exc).__name__})"
                final = [
                    r.model_copy(update={"status": "failed", "reason": reason, "output": None})
                    if r.status == "ok" and r.output
                    else r
                    for r in final
                ]
        return final

    def _sync(self, placer: Placer) -> dict[str, FileDigests]:
        """Sync the chunk's outputs; meanwhile hash the bytes the de-identifier held (digests by input).

        fsync waits on the disk and hashlib hashes without the GIL: the two overlap, so the
        digests the audit log needs cost no time where a core is free.
        """
        if not self.deid.hold_digests:
            placer.sync()
            return {}
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="privguard-sync")
        syncing = self._syncer.submit(placer.sync)
        try:
            return self.deid.take_digests()
        finally:
            syncing.result()  # raises what the sync raised

    def _files(self, paths: list[Path]) -> list[FileResult]:
        target = self.cfg.out if self.cfg.dry_run else self.staging
        try:
            return self.deid.files(paths, target, dry_run=self.cfg.dry_run)
        except MemoryError:
            if len(paths) > 1:
                return [r for p in paths for r in self._files([p])]
            return [FileResult(input=str(paths[0]), status="failed", reason=_MEMORY)]
        except Exception as exc:  # never expected: Deidentifier.files reports per file
            if len(paths) > 1:
                return [r for p in paths for r in self._files([p])]
            reason = f"unexpected error ({type(exc).__name__})"
            return [FileResult(input=str(paths[0]), status="failed", reason=reason)]

    def _place(self, res: FileResult, placer: Placer) -> FileResult:
        assert res.output is not None
        try:
            placer.place(res.output)
        except PrivguardError as exc:
            return res.model_copy(update={"status": "failed", "reason": str(exc), "output": None})
        except OSError as exc:
            reason = f"the output cannot be written ({exc.strerror})"
            return res.model_copy(update={"status": "failed", "reason": reason, "output": None})
        finally:
            (self.staging / res.output).unlink(missing_ok=True)
        return res
