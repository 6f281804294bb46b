"""De-identification in worker processes: one :class:`Deidentifier` per process, reused.

A task is a chunk of queued inputs, scrubbed into a scratch folder under
``work/`` and described by PHI-free :class:`Outcome` objects. The worker moves
each output into ``outgoing/`` itself (:func:`~privguard.node.queue.commit_outputs`);
an input that fails stays in ``incoming/`` for the parent to seal into quarantine.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from privguard.cores import usable_cores
from privguard.deidentifier import Deidentifier, PixelOptions
from privguard.node.config import NodeConfig
from privguard.node.queue import commit_outputs
from privguard.pseudonym.keys import ProjectKey


@dataclass
class Outcome:
    """What happened to one input (no PHI: paths are queue paths, reasons privguard's own)."""

    name: str
    ok: bool
    output: str | None = None
    """The scrubbed file's path (in ``work/``) when ok."""
    relpath: str | None = None
    """``<patient>/<study>/<series>/<instance>.dcm`` from pseudonymous values."""
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pixels: dict[str, Any] | None = None
    input_sha256: str = ""
    output_sha256: str = ""
    sop_class: str = ""
    transfer_syntax: str = ""
    """Of the output's file meta, for the forwarder's presentation contexts (read here, not in the node)."""


def description(o: Outcome) -> dict[str, Any]:
    """What ``outgoing/<name>.json`` holds (no PHI); the node also keeps it in memory."""
    return {
        "relpath": o.relpath,
        "counts": o.counts,
        "pixels": o.pixels,
        "input_sha256": o.input_sha256,
        "output_sha256": o.output_sha256,
        "sop_class": o.sop_class,
        "transfer_syntax": o.transfer_syntax,
    }


_DEID: Deidentifier | None = None
#: Whether the forwarder needs each output's SOP class and transfer syntax (C-STORE only): read
#: from the output's file meta here, so that the node process never reads them.
_SYNTAX = True
_CHUNKS = 0
#: A worker empties its scratch folder after this many chunks (it holds only empty folders then).
SCRATCH_CLEAN_EVERY = 256


def make_deidentifier(cfg: NodeConfig, key: ProjectKey) -> Deidentifier:
    pixels = PixelOptions(ocr=cfg.ocr, device=cfg.device)
    return Deidentifier(
        cfg.profile,
        key,
        project=cfg.project,
        vault=cfg.vault,
        options=set(cfg.options),
        pixels=pixels,
        digests=True,  # SHA-256 of the bytes in memory, so that nobody reads the files again
    )


def die_with_parent() -> None:
    """End this worker when the node process dies, even by SIGKILL (Linux: PR_SET_PDEATHSIG).

    Without it a killed node leaves its workers waiting forever; they also must not keep the
    node's own SIGTERM/SIGINT handlers (inherited by fork), which would make them ignore a stop.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(0)


def needs_syntax(cfg: NodeConfig) -> bool:
    """Whether the destination needs each output's SOP class and transfer syntax (C-STORE)."""
    return cfg.destination.type == "dimse"


def init_worker(cfg: NodeConfig, key: ProjectKey) -> None:
    global _DEID, _SYNTAX
    die_with_parent()
    _SYNTAX = needs_syntax(cfg)
    os.environ.setdefault("PRIVGUARD_OCR_THREADS", str(max(1, usable_cores() // cfg.workers)))
    warnings.simplefilter("ignore")
    _DEID = make_deidentifier(cfg, key)


def _sha256_file(path: Path) -> str:
    h = sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_or_empty(path: Path) -> str:
    try:
        return _sha256_file(path)
    except OSError:
        return ""


def scrub_chunk(queue_root: str, inputs: list[str], deid: Deidentifier | None = None) -> list[Outcome]:
    """Scrub queued inputs and move the outputs into ``outgoing`` (see :func:`commit_outputs`).

    Every input gets an outcome, errors never stop the others; failed inputs
    stay in ``incoming`` for the parent to quarantine.
    """
    import pydicom

    deid = deid or _DEID
    assert deid is not None, "worker not initialised"
    global _CHUNKS
    root = Path(queue_root)
    paths = [Path(p) for p in inputs]
    # One scratch folder per worker, kept between chunks: the patient/study/series folders the
    # de-identifier creates for its outputs are reused by the next instances of the same series.
    chunk_dir = root / "work" / f"w{os.getpid()}"
    results = deid.files(paths, chunk_dir)
    outcomes: list[Outcome] = []
    for path, res in zip(paths, results, strict=True):
        name = path.stem
        dig = res.digests
        in_sha = dig.input_sha256 if dig is not None and dig.input_sha256 else _sha256_or_empty(path)
        if res.status != "ok" or not res.output:
            outcomes.append(
                Outcome(name, False, reason=res.reason or res.status, pixels=res.pixels, input_sha256=in_sha)
            )
            continue
        out = chunk_dir / res.output
        try:
            out_sha = dig.output_sha256 if dig is not None and dig.output_sha256 else _sha256_file(out)
            fm = pydicom.filereader.read_file_meta_info(out) if _SYNTAX else None
        except OSError as exc:
            outcomes.append(Outcome(name, False, reason=f"output not readable ({exc.strerror})"))
            continue
        outcomes.append(
            Outcome(
                name,
                True,
                output=str(out),
                relpath=res.output,
                counts=dict(res.counts),
                pixels=res.pixels,
                input_sha256=in_sha,
                output_sha256=out_sha,
                sop_class=str(fm.get("MediaStorageSOPClassUID", "") or "") if fm is not None else "",
                transfer_syntax=str(fm.get("TransferSyntaxUID", "") or "") if fm is not None else "",
            )
        )
    done = [(o.name, Path(o.output), description(o)) for o in outcomes if o.ok and o.output is not None]
    commit_outputs(root, done)
    _CHUNKS += 1
    if _CHUNKS % SCRATCH_CLEAN_EVERY == 0:  # drop the folders of series long gone
        shutil.rmtree(chunk_dir, ignore_errors=True)
    return outcomes


Task = Callable[[str, list[str]], list[Outcome]]
"""What a worker runs for each chunk: :func:`scrub_chunk` (a test may stand in its own)."""


def worker_main(conn: Connection, cfg: NodeConfig, key: ProjectKey, task: Task) -> None:
    """A worker process: build the de-identifier, then run chunks sent over ``conn`` until told to stop.

    Messages to the node: ``("ready", pid)`` or ``("error", reason)`` once; then, per chunk,
    ``("done", outcomes)`` or ``("raised", exception type)``. ``None`` (or a closed pipe) stops it.
    One pipe per worker and one chunk at a time: no pool manager, no result queue shared by the
    workers, so a chunk costs the node one send and one receive.
    """
    try:
        init_worker(cfg, key)
    except Exception as exc:  # privguard's own message (a profile, a missing extra): no PHI
        conn.send(("error", str(exc) or type(exc).__name__))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        root, paths = msg
        try:
            conn.send(("done", task(root, paths)))
        except Exception as exc:  # never expected: scrub_chunk reports per input
            conn.send(("raised", type(exc).__name__))
