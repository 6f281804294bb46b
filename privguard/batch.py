"""Bulk scrubbing: folders of DICOM files in, a de-identified folder out.

``scrub(ScrubConfig(...))`` walks the inputs (DICOM recognised by content, not
by name), de-identifies every file in parallel worker processes (one
:class:`~privguard.deidentify.Deidentifier` per process, files sent in chunks),
and writes each output atomically under
``OUT/<patient>/<study>/<series>/<instance>.dcm``: names built from
pseudonymous values only, never from an input path.

* A bad file is reported (``failed`` with a PHI-free reason) and the batch goes on.
* ``resume`` skips inputs finished by an earlier run; the output is
  deterministic, so a resumed run yields the same bytes as a fresh one. The
  journal (``OUT/.privguard/journal.jsonl``) records only keyed tokens of the
  input paths, never the paths.
* The optional JSON-lines report holds original paths: it stays with the sender.
* Inputs are opened read-only; the output folder may not lie inside an input
  folder, nor an input inside the output folder.
"""

from __future__ import annotations

import hmac
import json
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from hashlib import sha256
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from privguard.cores import usable_cores
from privguard.deidentify import DEFAULT_PROJECT, Deidentifier, PixelOptions
from privguard.dicomio import sniff
from privguard.errors import ConfigError, OutputError
from privguard.header.profile import DeidProfile, Option, load_profile
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

logger = logging.getLogger(__name__)

JOURNAL_DIR = ".privguard"
JOURNAL = "journal.jsonl"
MAX_FAILURES_KEPT = 1000


class ScrubConfig(BaseModel):
    """Everything a scrub run needs (the CLI builds one from its options)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    inputs: list[Path]
    out: Path
    key: ProjectKey | Path
    profile: str | Path | DeidProfile = "basic"
    options: frozenset[Option] = frozenset()
    project: str = Field(default=DEFAULT_PROJECT, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    vault: Path | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024)
    report: Path | None = None
    resume: bool = False
    dry_run: bool = False
    pixels: PixelOptions | None = None
    chunk_size: int = Field(default=16, ge=1, le=4096)
    executor: Literal["processes", "ray"] = "processes"
    """Where workers run: local processes, or a Ray cluster (the output folder must be shared)."""
    ray_address: str | None = None
    """Ray cluster address (``auto``, ``ray://host:10001``); None starts a local Ray."""


class ScrubSummary(BaseModel):
    """The outcome of a run (no PHI: failures carry their input path for the sender only)."""

    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    not_dicom: int = 0
    resumed: int = 0
    seconds: float = 0.0
    files_per_second: float = 0.0
    counts: dict[str, int] = Field(default_factory=dict)
    failures: list[FileResult] = Field(default_factory=list)
    output: str = ""
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


# -- paths ----------------------------------------------------------------------------------


def _check_paths(cfg: ScrubConfig) -> None:
    out = cfg.out.resolve()
    for inp in cfg.inputs:
        if not inp.exists():
            raise ConfigError(f"input {inp} does not exist")
        r = inp.resolve()
        if r == out or (r.is_dir() and out.is_relative_to(r)):
            raise OutputError(f"the output folder {cfg.out} lies inside the input {inp}; choose another")
        if r.is_relative_to(out):
            raise OutputError(f"the input {inp} lies inside the output folder {cfg.out}; choose another")
    if cfg.dry_run:
        return
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output {cfg.out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not cfg.resume:
        raise OutputError(
            f"the output folder {cfg.out} is not empty; use --resume to continue an earlier run there, "
            "or choose an empty folder"
        )


def iter_files(inputs: list[Path]) -> Iterator[Path]:
    """Every regular file under the inputs, in a stable (sorted) order; links are not followed."""
    for inp in inputs:
        if inp.is_file():
            yield inp
            continue
        for root, dirs, files in os.walk(inp):
            dirs.sort()
            for name in sorted(files):
                p = Path(root) / name
                if p.is_file() and not p.is_symlink():
                    yield p


# -- journal (resume) -----------------------------------------------------------------------


class Journal:
    """Which inputs are done, by keyed tokens of their path, size and modification time."""

    def __init__(self, out: Path, key: ProjectKey, project: str, enabled: bool) -> None:
        self._key = key.derive("journal", project)
        self.path = out / JOURNAL_DIR / JOURNAL
        self.done: dict[str, tuple[str, str]] = {}
        self._fh: IO[str] | None = None
        self.enabled = enabled
        if enabled and self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        e = json.loads(line)
                        self.done[e["in"]] = (e["sig"], e["out"])
                    except (ValueError, KeyError):
                        continue  # a line cut short by an interrupted run

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8", "surrogateescape"), sha256).hexdigest()[:32]

    def tokens(self, path: Path) -> tuple[str, str]:
        st = path.stat()
        return self._mac(str(path.resolve())), self._mac(f"{st.st_size}:{st.st_mtime_ns}")

    def finished(self, path: Path, out: Path) -> str | None:
        """The output of ``path`` if an earlier run finished it and it is still there."""
        if not self.done:
            return None
        token, sig = self.tokens(path)
        hit = self.done.get(token)
        if hit and hit[0] == sig and (out / hit[1]).is_file():
            return hit[1]
        return None

    def add(self, path: Path, output: str) -> None:
        if not self.enabled:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = (
                self.path.exists()
                and self.path.stat().st_size > 0
                and not self.path.read_bytes().endswith(b"\n")
            )
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if torn:  # an interrupted run left half a line: start a fresh one
                self._fh.write("\n")
        token, sig = self.tokens(path)
        self._fh.write(json.dumps({"in": token, "sig": sig, "out": output}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _clean_stale_temps(out: Path) -> int:
    n = 0
    for root, _dirs, files in os.walk(out):
        for name in files:
            if name.startswith(".privguard-") and name.endswith(".tmp"):
                (Path(root) / name).unlink(missing_ok=True)
                n += 1
    return n


# -- workers --------------------------------------------------------------------------------

_WORKER: Deidentifier | None = None


def make_deidentifier(cfg: ScrubConfig, key: ProjectKey) -> Deidentifier:
    return Deidentifier(
        cfg.profile, key, project=cfg.project, vault=cfg.vault, options=set(cfg.options), pixels=cfg.pixels
    )


def _init_worker(cfg: ScrubConfig, key: ProjectKey) -> None:
    global _WORKER
    import warnings

    # N OCR workers share the machine's cores: give each torch its share, not all of them.
    os.environ.setdefault("PRIVGUARD_OCR_THREADS", str(max(1, usable_cores() // cfg.workers)))

    warnings.simplefilter("ignore")  # pydicom warns about odd inputs; the report says what matters
    _WORKER = make_deidentifier(cfg, key)


def _work(paths: list[Path], out: Path, dry_run: bool) -> list[FileResult]:
    assert _WORKER is not None
    return _WORKER.files(paths, out, dry_run=dry_run)


# -- the run --------------------------------------------------------------------------------


def scrub(
    config: ScrubConfig,
    on_result: Callable[[FileResult], None] | None = None,
    on_discovered: Callable[[int], None] | None = None,
) -> ScrubSummary:
    """De-identify every DICOM file under ``config.inputs`` into ``config.out``.

    ``on_result`` is called in this process for every input (ok, skipped or
    failed); ``on_discovered`` with the running count of files found.
    """
    cfg = config
    key = cfg.key if isinstance(cfg.key, ProjectKey) else ProjectKey.load(cfg.key)
    profile = load_profile(cfg.profile)
    cfg = cfg.model_copy(update={"key": key, "profile": profile})
    _check_paths(cfg)
    # Build one de-identifier up front: a bad profile, vault or missing OCR extra fails
    # here, before any file is touched.
    probe = make_deidentifier(cfg, key)
    summary = ScrubSummary(output=str(cfg.out), dry_run=cfg.dry_run)
    counts: Counter[str] = Counter()
    journal = Journal(cfg.out, key, cfg.project, enabled=not cfg.dry_run)
    report = _open_report(cfg.report)
    if cfg.resume and cfg.out.exists():
        _clean_stale_temps(cfg.out)
    start = time.perf_counter()

    def record(res: FileResult, path: Path | None = None) -> None:
        summary.total += 1
        if res.status == "ok":
            summary.ok += 1
            counts.update(res.counts)
            if path is not None and res.output and not cfg.dry_run:
                journal.add(path, res.output)
        elif res.status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
            if len(summary.failures) < MAX_FAILURES_KEPT:
                summary.failures.append(res)
        if report is not None:
            report.write(res.model_dump_json(exclude_none=True) + "\n")
        if on_result is not None:
            on_result(res)

    def todo() -> Iterator[Path]:
        found = 0
        for path in iter_files(cfg.inputs):
            found += 1
            if on_discovered is not None:
                on_discovered(found)
            if not sniff(path):
                summary.not_dicom += 1
                record(FileResult(input=str(path), status="skipped", reason="not a DICOM file"))
                continue
            if cfg.resume:
                done = journal.finished(path, cfg.out)
                if done is not None:
                    summary.resumed += 1
                    record(
                        FileResult(
                            input=str(path), output=done, status="skipped", reason="done in an earlier run"
                        )
                    )
                    continue
            yield path

    try:
        if cfg.executor == "ray":
            from privguard.scaleout import run_ray

            run_ray(todo(), cfg, key, record)
        elif cfg.workers == 1:
            _run_inline(probe, todo(), cfg, record)
        else:
            _run_pool(todo(), cfg, key, record)
    finally:
        probe.close()
        journal.close()
        if report is not None:
            report.close()
    summary.seconds = time.perf_counter() - start
    processed = summary.ok + summary.failed
    summary.files_per_second = processed / summary.seconds if summary.seconds > 0 else 0.0
    summary.counts = dict(counts)
    return summary


def _open_report(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report {path}: {exc.strerror}") from None


def chunks(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for p in paths:
        chunk.append(p)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_inline(
    deid: Deidentifier, paths: Iterator[Path], cfg: ScrubConfig, record: Callable[..., None]
) -> None:
    for chunk in chunks(paths, cfg.chunk_size if cfg.pixels is not None else 1):
        for path, res in zip(chunk, deid.files(chunk, cfg.out, dry_run=cfg.dry_run), strict=True):
            record(res, path)


def _run_pool(paths: Iterator[Path], cfg: ScrubConfig, key: ProjectKey, record: Callable[..., None]) -> None:
    pending: dict[Future[list[FileResult]], list[Path]] = {}
    # OCR workers hold torch, which must not be forked after its threads start: spawn them.
    # Header-only workers fork (cheaper start, modules already imported).
    ocr = cfg.pixels is not None and cfg.pixels.ocr != "off"
    method = "spawn" if ocr or os.name != "posix" else "fork"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        max_workers=cfg.workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg, key)
    ) as pool:
        todo = chunks(paths, cfg.chunk_size)
        exhausted = False
        while True:
            while not exhausted and len(pending) < cfg.workers * 3:
                chunk = next(todo, None)
                if chunk is None:
                    exhausted = True
                    break
                pending[pool.submit(_work, chunk, cfg.out, cfg.dry_run)] = chunk
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                chunk = pending.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # a worker died (e.g. out of memory): report its files
                    reason = f"worker failed ({type(exc).__name__})"
                    results = [FileResult(input=str(p), status="failed", reason=reason) for p in chunk]
                for path, res in zip(chunk, results, strict=True):
                    record(res, path)


def summary_json(summary: ScrubSummary) -> dict[str, Any]:
    """The machine-readable summary printed by ``privguard scrub --json``."""
    data = summary.model_dump(exclude={"failures"})
    data["failures"] = [f.model_dump(exclude_none=True) for f in summary.failures]
    return data


class AttributePlan(BaseModel):
    """One row of a dry run: what happens to an attribute, in how many files."""

    path: str
    keyword: str
    vr: str
    action: str
    reason: str
    files: int


class DryRun(BaseModel):
    """What a scrub would do, without writing anything."""

    files: list[FileResult]
    attributes: list[AttributePlan]


def dry_run(config: ScrubConfig, on_result: Callable[[FileResult], None] | None = None) -> DryRun:
    """Plan a scrub: per file the output it would get, per attribute the action (values never shown)."""
    import re

    from privguard.dicomio import read_source
    from privguard.errors import PrivguardError

    key = config.key if isinstance(config.key, ProjectKey) else ProjectKey.load(config.key)
    cfg = config.model_copy(update={"key": key, "profile": load_profile(config.profile), "dry_run": True})
    _check_paths(cfg)
    deid = Deidentifier(cfg.profile, key, project=cfg.project, vault=cfg.vault, options=set(cfg.options))
    rows: Counter[tuple[str, str, str, str, str]] = Counter()
    files: list[FileResult] = []
    try:
        for path in iter_files(cfg.inputs):
            if not sniff(path):
                res = FileResult(input=str(path), status="skipped", reason="not a DICOM file")
            else:
                try:
                    src = read_source(path)
                    st, rel = deid.process(src, record=True)
                    for ch in st.changes:
                        rows[
                            (re.sub(r"\[\d+\]", "[*]", ch.path), ch.keyword, ch.vr, ch.action, ch.reason)
                        ] += 1
                    res = FileResult(input=str(path), output=rel, status="ok", counts=dict(st.counts))
                except PrivguardError as exc:
                    res = FileResult(input=str(path), status="failed", reason=str(exc))
            files.append(res)
            if on_result is not None:
                on_result(res)
    finally:
        deid.close()
    attributes = [
        AttributePlan(path=p, keyword=k, vr=v, action=a, reason=r, files=n)
        for (p, k, v, a, r), n in sorted(rows.items())
    ]
    return DryRun(files=files, attributes=attributes)
