"""``scrub()``: one run, from checks to summary.

Order of a run: resolve the key and profile; check every path (exit 2 before
any work); build one probe de-identifier (a bad vault or missing OCR extra
fails here); create the output folder and take its lock; read the journal of
an earlier run (``resume``: it must be the same run) and open it; walk the
inputs and hand chunks to an executor; record every result (summary,
report, journal, hooks) in this process, flushing the journal after every
chunk (see :mod:`privguard.batch.journal` for when it is ``fsync``'d).
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from hashlib import sha256
from pathlib import Path
from typing import IO, Protocol

from privguard.batch.config import MAX_FAILURES_KEPT, RunInfo, ScrubConfig, ScrubSummary
from privguard.batch.executor import ExecStats, Executor, InlineExecutor, Pairs, ProcessExecutor
from privguard.batch.fsio import OutLock, create_private_file, fsync_dir
from privguard.batch.journal import JOURNAL_DIR, Journal
from privguard.batch.paths import check_paths, walk_inputs
from privguard.batch.worker import STAGING, make_deidentifier
from privguard.dicomio import sniff
from privguard.errors import ConfigError, KeyMaterialError, OutputError
from privguard.header.profile import DeidProfile, load_profile
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey


class RunSink(Protocol):
    """A per-run observer (e.g. an audit log): told the run, every result, and the summary.

    ``start`` is called after all checks passed, before the first file;
    ``result`` once per input, in this process; ``finish`` once, after the
    last result (also when the run stops early with an error: then with the
    summary so far).
    """

    def start(self, run: RunInfo, config: ScrubConfig) -> None: ...

    def result(self, result: FileResult) -> None: ...

    def finish(self, summary: ScrubSummary) -> None: ...


def load_key(key: ProjectKey | Path) -> ProjectKey:
    if isinstance(key, ProjectKey):
        return key
    try:
        return ProjectKey.load(key)
    except (KeyMaterialError, ConfigError):
        raise
    except Exception:  # e.g. JSON that is not an object
        raise KeyMaterialError(
            f"key file {key} is not a privguard project key (make one with: privguard keys new)"
        ) from None


def profile_sha256(profile: DeidProfile) -> str:
    """The profile's hash, the same in every process (issue 10 fix).

    ``options`` is a frozenset, whose JSON order follows the per-process hash
    seed: sorted here, or a resume in a new process is refused as "a different
    profile" whenever the profile has two or more options (e.g. ``research``).
    """
    data = profile.model_dump(mode="json")
    data["options"] = sorted(data["options"])
    return sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_info(cfg: ScrubConfig, key: ProjectKey, profile: DeidProfile) -> RunInfo:
    """What a resume must match: key id, profile hash, options (no paths, no values)."""
    pixels: dict[str, object] = {}
    if cfg.pixels is not None:
        pixels = {
            "ocr": cfg.pixels.ocr,
            "redact": cfg.pixels.redact,
            "allowlists": sorted(sha256(Path(p).read_bytes()).hexdigest() for p in cfg.pixels.allowlist),
        }
    vault = None
    if cfg.vault is not None:
        mac = hmac.new(key.derive("journal", cfg.project), str(cfg.vault.resolve()).encode(), sha256)
        vault = mac.hexdigest()[:32]
    return RunInfo(
        key_id=key.key_id,
        project=cfg.project,
        profile=profile.name,
        profile_sha256=profile_sha256(profile),
        options=tuple(sorted(o.value for o in cfg.options)),
        pixels=pixels,
        vault=vault,
    )


def _prepare_out(cfg: ScrubConfig) -> tuple[OutLock, int]:
    """Create the output folder and ``.privguard``, take the lock; refuse an unwritable output.

    Returns the lock and the number of symbolic links found inside an output being resumed.
    """
    out = cfg.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"the output folder {out} cannot be created ({exc.strerror})") from None
    private = out / JOURNAL_DIR
    try:
        os.mkdir(private, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputError(f"the output folder {out} is not writable ({exc.strerror})") from None
    if os.path.islink(private) or not os.path.isdir(private):
        raise OutputError(f"{private} exists and is not a folder; privguard keeps its journal there")
    if not os.access(out, os.W_OK | os.X_OK) or not os.access(private, os.W_OK | os.X_OK):
        raise OutputError(f"the output folder {out} is not writable")
    lock = OutLock(private / "lock")
    lock.acquire()
    try:
        shutil.rmtree(private / STAGING, ignore_errors=True)  # a dead run's half-written files
        os.mkdir(private / STAGING, 0o700)
        links = _scan_resumed(out) if cfg.resume else 0
    except BaseException:
        lock.release()
        raise
    if links:
        lock.release()
        raise OutputError(
            f"the output folder {out} holds {links} symbolic link(s); privguard never creates links and "
            "will not write through them: remove them, then resume"
        )
    return lock, links


def _scan_resumed(out: Path) -> int:
    """Remove stale temporary files of an interrupted run; count symbolic links (never followed)."""
    links = 0
    for root, dirs, files in os.walk(out):
        if root == str(out):
            dirs[:] = [d for d in dirs if d != JOURNAL_DIR]
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                links += 1
        for name in files:
            p = os.path.join(root, name)
            if os.path.islink(p):
                links += 1
            elif name.startswith(".privguard-") and name.endswith(".tmp"):
                os.unlink(p)
    return links


def _open_report(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    return os.fdopen(create_private_file(path), "w", encoding="utf-8")


def chunks(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for p in paths:
        chunk.append(p)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def make_executor(cfg: ScrubConfig, key: ProjectKey, stats: ExecStats) -> Executor:
    if cfg.executor == "ray":
        from privguard.batch.ray_executor import RayExecutor

        return RayExecutor(cfg, key, stats)
    if cfg.executor == "inline":
        return InlineExecutor(cfg, key)
    return ProcessExecutor(cfg, key, stats)


def scrub(
    config: ScrubConfig,
    on_result: Callable[[FileResult], None] | None = None,
    on_discovered: Callable[[int], None] | None = None,
    *,
    sinks: Sequence[RunSink] = (),
) -> ScrubSummary:
    """De-identify every DICOM file under ``config.inputs`` into ``config.out``.

    ``on_result`` is called in this process for every input (ok, skipped or
    failed); ``on_discovered`` with the running count of files found;
    ``sinks`` see the run, every result and the summary (see :class:`RunSink`).
    """
    key_file = config.key if isinstance(config.key, Path) else None
    key = load_key(config.key)
    profile = load_profile(config.profile)
    cfg = config.model_copy(update={"key": key, "profile": profile})
    check_paths(cfg, key_file)
    run = run_info(cfg, key, profile)
    # Build one de-identifier up front: a bad profile, vault or missing OCR extra fails
    # here, before any file is touched.
    make_deidentifier(cfg, key).close()
    lock: OutLock | None = None
    journal: Journal | None = None
    if not cfg.dry_run:
        lock, _ = _prepare_out(cfg)
    try:
        if not cfg.dry_run:
            journal = Journal(cfg.out, key, cfg.project)
            if cfg.resume:
                journal.load(run)
            journal.open(run)
        return _run(cfg, key, run, journal, on_result, on_discovered, sinks)
    finally:
        if journal is not None:
            journal.close()
        if lock is not None:
            shutil.rmtree(cfg.out / JOURNAL_DIR / STAGING, ignore_errors=True)
            lock.release()


def _run(
    cfg: ScrubConfig,
    key: ProjectKey,
    run: RunInfo,
    journal: Journal | None,
    on_result: Callable[[FileResult], None] | None,
    on_discovered: Callable[[int], None] | None,
    sinks: Sequence[RunSink],
) -> ScrubSummary:
    summary = ScrubSummary(output=str(cfg.out), dry_run=cfg.dry_run)
    counts: Counter[str] = Counter()
    stats = ExecStats()
    executor = make_executor(cfg, key, stats)
    report = _open_report(cfg.report) if not cfg.dry_run else None
    out_fd = os.open(cfg.out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW) if journal else None
    start = time.perf_counter()

    def record(res: FileResult, path: Path | None = None) -> None:
        summary.total += 1
        if res.status == "ok":
            summary.ok += 1
            counts.update(res.counts)
            if path is not None and res.output and journal is not None:
                journal.add(path, res.output)
        elif res.status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
            if len(summary.failures) < MAX_FAILURES_KEPT:
                summary.failures.append(res)
        # -- burned-in text (issue 11): how many files went through OCR, why, and which need review
        if res.pixels:
            summary.ocr_files += 1
            why = str(res.pixels.get("triage", "unknown")).split(":", 1)[0]
            summary.ocr_reasons[why] = summary.ocr_reasons.get(why, 0) + 1
            if res.pixels.get("verification") == "needs_review":
                summary.needs_review += 1
        # -- end burned-in text --
        if report is not None:
            report.write(res.model_dump_json(exclude_none=True) + "\n")
        for sink in sinks:
            sink.result(res)
        if on_result is not None:
            on_result(res)

    def emit(pairs: Pairs) -> None:
        for path, res in pairs:
            record(res, path)
        if journal is not None:
            journal.chunk_done()  # every line of this chunk names an output already on disk

    def todo() -> Iterator[Path]:
        found = 0
        for kind, path in walk_inputs(cfg.inputs, cfg.follow_symlinks):
            if kind == "duplicate":
                summary.duplicates += 1
                continue
            found += 1
            if on_discovered is not None:
                on_discovered(found)
            if kind == "symlink":
                summary.symlinks += 1
                record(
                    FileResult(
                        input=str(path),
                        status="skipped",
                        reason="symbolic link (not followed; --follow-symlinks)",
                    )
                )
                continue
            if not sniff(path):
                summary.not_dicom += 1
                record(FileResult(input=str(path), status="skipped", reason="not a DICOM file"))
                continue
            if cfg.resume and journal is not None and out_fd is not None:
                done = journal.finished(path, out_fd)
                if done is not None:
                    summary.resumed += 1
                    record(
                        FileResult(
                            input=str(path), output=done, status="skipped", reason="done in an earlier run"
                        )
                    )
                    continue
            yield path

    for sink in sinks:
        sink.start(run, cfg)
    try:
        executor.run(chunks(todo(), cfg.chunk_size), emit)
    finally:
        if out_fd is not None:
            os.close(out_fd)
        if report is not None:
            report.flush()
            os.fsync(report.fileno())
            report.close()
            if cfg.report is not None:
                fsync_dir(cfg.report.resolve().parent)
        summary.seconds = time.perf_counter() - start
        processed = summary.ok + summary.failed
        summary.files_per_second = processed / summary.seconds if summary.seconds > 0 else 0.0
        summary.counts = dict(counts)
        summary.retried = stats.retried
        summary.worker_deaths = stats.deaths
        for sink in sinks:
            sink.finish(summary)
    return summary
