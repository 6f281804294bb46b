"""The audit log writer: one append-only JSON Lines file, one writer per process.

A process opens the log once (:meth:`AuditLog.open`), then for each run calls
:meth:`~AuditLog.begin_run`, :meth:`~AuditLog.file_record` per file and
:meth:`~AuditLog.end_run`. Worker processes never write: the parent hands
each result to ``file_record``, which queues it; one writer thread hashes the
files (keyed hash of the input path and of the input bytes' SHA-256, SHA-256
of the output) and appends whole lines, so records never interleave. Between
processes an exclusive ``flock`` guards each append, and a writer that finds
the file grown re-reads the tail and chains onto it.

``end_run`` fsyncs the log before it returns: a run may report success only
after it. Beside the log, ``LOG.head`` holds the position and hash of the
last record written (updated after each fsync), so a log truncated or deleted
between runs is refused on the next open instead of silently restarted.

A process killed (or a power loss) in the middle of an append leaves a torn
last line. The next writer cuts it off, under the lock, only if the whole
records before it reach and chain on from the record the head file names
(nothing synced is lost), and then appends a chained ``recovery`` record
saying how many bytes after which record were removed; otherwise it refuses.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import queue
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privguard._version import __version__
from privguard.audit.chain import FORMAT_VERSION, GENESIS, Record, canonical, head_message, record_hash, seal
from privguard.errors import AuditIntegrityError, ConfigError, OutputError

if TYPE_CHECKING:
    from privguard.compliance.approval import SigningKey
    from privguard.header.profile import DeidProfile
    from privguard.models import FileResult
    from privguard.pseudonym.keys import ProjectKey

ENV_LOG = "PRIVGUARD_AUDIT_LOG"
LOG_NAME = "audit.jsonl"
HEAD_SUFFIX = ".head"
SIDE_FORMAT = "privguard-audit-log-head"
#: Pixel-report fields copied into a file record (numbers and fixed words only).
PIXEL_FIELDS = (
    "triage",
    "boxes_found",
    "boxes_redacted",
    "boxes_kept",
    "verification",
    "verification_rounds",
    "frames_changed",
)
REASON_CODES = {
    "not a DICOM file": "not-dicom",
    "done in an earlier run": "done-earlier",
}
_CHUNK = 1 << 20


def default_log_path() -> Path:
    """``$PRIVGUARD_AUDIT_LOG``, else ``$XDG_STATE_HOME/privguard/audit.jsonl`` (``~/.local/state``)."""
    env = os.environ.get(ENV_LOG)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "privguard" / LOG_NAME


def head_path(log: Path) -> Path:
    """The side file holding the last record's position and hash."""
    return log.with_name(log.name + HEAD_SUFFIX)


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class RunHead:
    """The chain head after a run's end record: what ``OUT/AUDIT-HEAD.json`` holds."""

    log_id: str
    run: str
    seq: int
    hash: str
    outcome: str
    manifest_sha256: str | None
    signed_by: str | None
    public_key: str | None
    signature: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "privguard-audit-run-head",
            "v": FORMAT_VERSION,
            "log": self.log_id,
            "run": self.run,
            "seq": self.seq,
            "hash": self.hash,
            "outcome": self.outcome,
            "manifest_sha256": self.manifest_sha256,
            "signed_by": self.signed_by,
            "public_key": self.public_key,
            "sig": self.signature,
        }


@dataclass
class _FileItem:
    input: str | None
    status: str
    output: str | None
    out_dir: Path | None
    reason: str | None
    counts: Mapping[str, int]
    pixels: Mapping[str, Any] | None
    input_sha256: str | None
    output_sha256: str | None


@dataclass
class _Run:
    run_id: str
    lookup_key: bytes
    files: int = 0
    outputs: dict[str, str] = field(default_factory=dict)


class AuditLog:
    """An open audit log. Use :meth:`open`; one active run at a time."""

    #: Scrub workers hash each input and output from memory for this log (``ScrubConfig.digests``),
    #: so the writer thread never reads the files again.
    worker_digests = True

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.log_id = ""
        self._seq = 0
        self._hash = GENESIS
        self._size = 0
        self._run: _Run | None = None
        self._q: queue.Queue[_FileItem] = queue.Queue(maxsize=4096)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._recovery: Record | None = None

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None) -> AuditLog:
        """Open (or create) the log at ``path`` (default: :func:`default_log_path`).

        Raises
        ------
        AuditIntegrityError
            The log was deleted or truncated since its last run, its last record
            does not match its head file, or it ends in a torn record that
            cannot be cut off safely (a torn record after the synced head is
            cut off and a ``recovery`` record written instead).
        ConfigError
            The log cannot be created or opened.
        """
        log = Path(path) if path is not None else default_log_path()
        side = head_path(log)
        if not log.exists() and side.exists():
            raise AuditIntegrityError(
                f"the audit log {log} is missing, but {side.name} beside it says it held records; restore "
                f"the log from a backup (or move {side.name} away to start a new log)"
            )
        try:
            log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the audit log {log}: {exc.strerror}") from None
        self = cls(log, fd)
        try:
            with self._locked():
                self._load_tail(check_side=True)
                if self._recovery is not None:  # a torn tail was cut off: record it at once
                    self._append([])
                    self._sync_locked()
                if self._size == 0:
                    self.log_id = "log_" + secrets.token_hex(16)
                    self._append(
                        [{"v": FORMAT_VERSION, "type": "log", "log": self.log_id, "time": now_text()}]
                    )
                    self._sync_locked()
        except BaseException:
            os.close(fd)
            raise
        return self

    @contextlib.contextmanager
    def _locked(self) -> Any:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _load_tail(self, check_side: bool = False) -> None:
        size = os.fstat(self._fd).st_size
        self._size = size
        side = _read_side(self.path)
        if size == 0:
            if check_side and side is not None and side.get("seq", 0) > 0:
                raise AuditIntegrityError(
                    f"the audit log {self.path} is empty, but its head file says it held {side['seq']} "
                    "records: it was truncated or replaced; restore it from a backup"
                )
            self._seq, self._hash = 0, GENESIS
            return
        first, last = _first_last_lines(self._fd, size)
        if not last.endswith(b"\n"):
            self._recover(size, len(last), side)
            return
        try:
            head, tail = json.loads(first), json.loads(last)
            self.log_id = str(head["log"])
            seq, digest = int(tail["seq"]), str(tail["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditIntegrityError(
                f"the audit log {self.path} is damaged; run: privguard audit verify {self.path}"
            ) from None
        if record_hash(tail) != digest:
            raise AuditIntegrityError(
                f"the last record of the audit log {self.path} has been modified; "
                f"run: privguard audit verify {self.path}"
            )
        if check_side and side is not None:
            if side.get("log") != self.log_id:
                raise AuditIntegrityError(
                    f"the head file beside the audit log {self.path} belongs to another log"
                )
            if int(side.get("seq", 0)) > seq:
                raise AuditIntegrityError(
                    f"the audit log {self.path} was truncated: it ends at record {seq}, but its head file "
                    f"says it held {side['seq']}; restore it from a backup"
                )
            if int(side.get("seq", 0)) == seq and side.get("hash") != digest:
                raise AuditIntegrityError(
                    f"the last record of the audit log {self.path} differs from its head file"
                )
        self._seq, self._hash = seq, digest

    def _recover(self, size: int, torn: int, side: Mapping[str, Any] | None) -> None:
        """Cut off a torn last line (a crash during an append) if nothing synced is lost (lock held).

        Safe only when the whole records before the torn bytes reach, and chain
        on from, the record the head file names: everything ever fsync'd (every
        run that reported its end) is then still in the log, and the torn bytes
        belong to a record that no run reported. Otherwise the log is refused.
        The cut is recorded by a ``recovery`` record that the next append
        writes first (see :meth:`_take_recovery`).
        """
        keep = size - torn
        refuse = (
            f"the audit log {self.path} ends in a partial record (torn by a crash) and cannot be recovered "
            "safely: {why}; run: privguard audit verify " + str(self.path)
        )
        if side is None:
            raise AuditIntegrityError(refuse.format(why=f"{head_path(self.path).name} is missing"))
        if keep == 0:
            raise AuditIntegrityError(refuse.format(why="it holds no whole record"))
        try:
            side_seq, side_hash, side_log = int(side["seq"]), str(side["hash"]), str(side["log"])
        except (KeyError, TypeError, ValueError):
            raise AuditIntegrityError(refuse.format(why=f"{head_path(self.path).name} is damaged")) from None
        log_id, seq, digest, problem = _check_prefix(self._fd, keep, side_seq, side_hash)
        if problem is None and log_id != side_log:
            problem = f"{head_path(self.path).name} belongs to another log"
        if problem is not None:
            raise AuditIntegrityError(refuse.format(why=problem))
        try:
            os.ftruncate(self._fd, keep)
        except OSError as exc:
            raise OutputError(f"cannot write the audit log {self.path}: {exc.strerror}") from None
        self.log_id = log_id
        self._size, self._seq, self._hash = keep, seq, digest
        self._recovery = {
            "v": FORMAT_VERSION,
            "type": "recovery",
            "time": now_text(),
            "reason": "torn-tail",
            "after_seq": seq,
            "removed_bytes": torn,
            "synced_seq": side_seq,
        }

    def _take_recovery(self) -> list[Record]:
        rec, self._recovery = self._recovery, None
        return [rec] if rec is not None else []

    # -- appending -----------------------------------------------------------------------------

    def _append(self, records: list[Record], sign: Any = None) -> None:
        """Seal and append ``records`` (lock held). On a failed write the file is cut back."""
        size = os.fstat(self._fd).st_size
        if size != self._size:  # another process appended: chain onto its last record
            self._load_tail()
        recovery = self._take_recovery()
        records = recovery + records
        seq, prev = self._seq, self._hash
        lines = []
        for i, rec in enumerate(records):
            seq += 1
            lines.append(seal(rec, seq, prev, sign if i == len(records) - 1 else None))
            prev = rec["hash"]
        data = b"".join(lines)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            if recovery:  # the cut is done: its record must still be written, by the next append
                self._recovery = recovery[0]
            reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror
            raise OutputError(f"cannot write the audit log {self.path}: {reason}") from None
        self._size += len(data)
        self._seq, self._hash = seq, prev

    def _sync_locked(self) -> None:
        try:
            os.fsync(self._fd)
            side = head_path(self.path)
            tmp = side.with_name(side.name + ".tmp")
            doc = {"format": SIDE_FORMAT, "v": FORMAT_VERSION, "log": self.log_id, "seq": self._seq}
            doc["hash"] = self._hash
            with open(tmp, "wb") as fh:
                fh.write(canonical(doc) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, side)
        except OSError as exc:
            reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror
            raise OutputError(f"cannot write the audit log {self.path}: {reason}") from None

    # -- runs ----------------------------------------------------------------------------------

    def begin_run(
        self,
        *,
        command: str,
        key: ProjectKey,
        project: str = "default",
        profile: DeidProfile | None = None,
        operator: str | None = None,
        inputs: Sequence[str | Path] = (),
        out: str | Path | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Write the run record and return the run id.

        ``details`` adds PHI-free fields (for an export: request id and hash,
        approval id, decision). Paths are stored as keyed hashes only.
        """
        if self._run is not None:
            raise ConfigError("an audit run is already open in this process; end it first")
        self._raise_error()
        lookup = key.derive("audit", "lookup")
        run_id = "run_" + secrets.token_hex(12)
        rec: Record = {
            "v": FORMAT_VERSION,
            "type": "run",
            "run": run_id,
            "time": now_text(),
            "command": command,
            "user": os_user(),
            "operator": operator,
            "host": socket.gethostname(),
            "software": f"privguard {__version__}",
            "key_id": key.key_id,
            "project": project,
            "profile": _profile_ref(profile),
            "inputs": [path_token(lookup, p) for p in inputs],
            "out": path_token(lookup, out) if out is not None else None,
        }
        if details:
            clash = set(details) & set(rec)
            if clash:
                raise ValueError(f"details may not replace {sorted(clash)}")
            rec.update(details)
        with self._locked():
            self._append([rec])
            self._sync_locked()
        self._run = _Run(run_id, lookup)
        self._error = None
        self._thread = threading.Thread(target=self._loop, name="privguard-audit", daemon=True)
        self._thread.start()
        return run_id

    @property
    def run_id(self) -> str | None:
        return self._run.run_id if self._run is not None else None

    def file_record(
        self,
        *,
        input: str | Path | None,
        status: str,
        output: str | None = None,
        out_dir: str | Path | None = None,
        reason: str | None = None,
        counts: Mapping[str, int] | None = None,
        pixels: Mapping[str, Any] | None = None,
        input_sha256: str | None = None,
        output_sha256: str | None = None,
    ) -> None:
        """Queue one file's record (hashed and written by the writer thread, in call order).

        ``input`` is the local input path (stored only as a keyed hash, as is
        the SHA-256 of its bytes, read here unless ``input_sha256`` is given);
        ``output`` the pseudonymous output path relative to ``out_dir`` (its
        SHA-256 is read unless ``output_sha256`` is given).
        """
        if self._run is None:
            raise ConfigError("file_record called outside a run (call begin_run first)")
        self._raise_error()
        item = _FileItem(
            input=str(input) if input is not None else None,
            status=status,
            output=output,
            out_dir=Path(out_dir) if out_dir is not None else None,
            reason=reason,
            counts=dict(counts or {}),
            pixels=pixels,
            input_sha256=input_sha256,
            output_sha256=output_sha256,
        )
        self._q.put(item)

    def file_result(self, result: FileResult, out_dir: str | Path | None) -> None:
        """:meth:`file_record` for a :class:`~privguard.models.FileResult`.

        The digests the worker computed (``result.digests``, see
        :attr:`worker_digests`) are used as they are; a file without them is read here.
        """
        digests = result.digests
        self.file_record(
            input=result.input,
            status=result.status,
            output=result.output,
            out_dir=out_dir,
            reason=result.reason,
            counts=result.counts,
            pixels=result.pixels,
            input_sha256=digests.input_sha256 if digests is not None else None,
            output_sha256=digests.output_sha256 if digests is not None and result.output else None,
        )

    def flush(self) -> dict[str, str]:
        """Wait until every queued record is written; return this run's outputs (path -> SHA-256)."""
        if self._run is None:
            return {}
        self._q.join()
        self._raise_error()
        return dict(self._run.outputs)

    def end_run(
        self,
        *,
        outcome: str,
        counts: Mapping[str, int] | None = None,
        manifest_sha256: str | None = None,
        reason: str | None = None,
        signing_key: SigningKey | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> RunHead:
        """Write the run's end record (signed if ``signing_key``), fsync, and return the head.

        ``outcome`` is ``success``, ``partial`` (some files failed), ``failed``
        or ``refused``; ``details`` adds PHI-free fields (what an export learnt
        during the run: request hash, approval id, decision). Raises
        :class:`~privguard.errors.OutputError` when the log cannot be written:
        the run must not then report success.
        """
        run = self._run
        if run is None:
            raise ConfigError("end_run called outside a run")
        try:
            self.flush()
        finally:
            self._stop_thread()
        pub = base64.urlsafe_b64encode(signing_key.public_key.raw).decode() if signing_key else None
        rec: Record = {
            "v": FORMAT_VERSION,
            "type": "end",
            "run": run.run_id,
            "time": now_text(),
            "outcome": outcome,
            "reason": reason,
            "counts": dict(counts or {}),
            "files": run.files,
            "manifest_sha256": manifest_sha256,
            "signed_by": signing_key.key_id if signing_key else None,
            "public_key": pub,
        }
        if details:
            clash = set(details) & set(rec)
            if clash:
                raise ValueError(f"details may not replace {sorted(clash)}")
            rec.update(details)

        def sign(sealed: Record) -> str:
            assert signing_key is not None
            msg = head_message(
                self.log_id, run.run_id, int(sealed["seq"]), str(sealed["hash"]), manifest_sha256
            )
            return signing_key.sign(msg).hex()

        with self._locked():
            self._append([rec], sign if signing_key is not None else None)
            self._sync_locked()
        self._run = None
        return RunHead(
            log_id=self.log_id,
            run=run.run_id,
            seq=int(rec["seq"]),
            hash=str(rec["hash"]),
            outcome=outcome,
            manifest_sha256=manifest_sha256,
            signed_by=rec["signed_by"],
            public_key=pub,
            signature=rec.get("sig"),
        )

    def close(self) -> None:
        """Stop the writer (an open run stays unfinished: it shows as interrupted) and close the file."""
        if self._run is not None:
            with contextlib.suppress(Exception):
                self.flush()
            self._stop_thread()
            with contextlib.suppress(Exception), self._locked():
                self._sync_locked()
            self._run = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread ---------------------------------------------------------------------

    def _raise_error(self) -> None:
        if self._error is not None:
            err = self._error
            if isinstance(err, OutputError | AuditIntegrityError):
                raise err
            raise OutputError(f"cannot write the audit log {self.path}: {err}")

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._q.put(None)  # type: ignore[arg-type]
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            batch = [item]
            while item is not None and len(batch) < 256:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            stop = batch[-1] is None
            items = [b for b in batch if b is not None]
            try:
                if items and self._error is None:
                    records = [self._file_rec(it) for it in items]
                    with self._locked():
                        self._append(records)
            except BaseException as exc:  # reported by flush/end_run
                self._error = exc
            finally:
                for _ in batch:
                    self._q.task_done()
            if stop:
                return

    def _file_rec(self, it: _FileItem) -> Record:
        run = self._run
        assert run is not None
        key = run.lookup_key
        in_sha = it.input_sha256
        if in_sha is None and it.input is not None and (it.status != "skipped" or it.output is not None):
            with contextlib.suppress(OSError):
                in_sha = file_sha256(Path(it.input))
        out_sha = it.output_sha256
        if it.output is not None and out_sha is None and it.out_dir is not None:
            try:
                out_sha = file_sha256(it.out_dir / it.output)
            except OSError:
                out_sha = None
        if it.output is not None and out_sha is not None and it.status in ("ok", "skipped"):
            run.outputs[it.output] = out_sha
        run.files += 1
        reason = _clean_reason(it.reason, it.input)
        return {
            "v": FORMAT_VERSION,
            "type": "file",
            "run": run.run_id,
            "input": path_token(key, it.input) if it.input is not None else None,
            "input_sha256": keyed(key, "sha256", in_sha) if in_sha is not None else None,
            "output": it.output,
            "output_sha256": out_sha,
            "status": it.status,
            "code": _code(it.status, reason),
            "reason": reason,
            "actions": {k: int(v) for k, v in sorted(it.counts.items())},
            "pixels": _pixels(it.pixels),
        }


# -- helpers ---------------------------------------------------------------------------------------


def keyed(key: bytes, kind: str, value: str) -> str:
    """A keyed token (HMAC-SHA256, 128 bits hex) of ``value``: the sender can look it up, nobody else."""
    msg = f"{kind}\x00{value}".encode("utf-8", "surrogateescape")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]


def path_token(key: bytes, path: str | Path) -> str:
    """The keyed token of a local path (its absolute form)."""
    return keyed(key, "path", os.path.abspath(str(path)))


def _profile_ref(profile: DeidProfile | None) -> dict[str, str] | None:
    if profile is None:
        return None
    from privguard.compliance.canonical import profile_fingerprint

    return {"name": profile.name, "sha256": profile_fingerprint(profile)}


def _clean_reason(reason: str | None, input_path: str | None) -> str | None:
    if reason is None:
        return None
    text = reason
    if input_path:
        for part in {input_path, os.path.abspath(input_path), os.path.basename(input_path)}:
            if part:
                text = text.replace(part, "<input>")
    return text[:200]


def _code(status: str, reason: str | None) -> str:
    if reason is None:
        return status
    return REASON_CODES.get(reason, "failed" if status == "failed" else status)


def _pixels(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return None
    out: dict[str, Any] = {}
    for name in PIXEL_FIELDS:
        value = report.get(name)
        if isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 40):
            out[name] = value
    return out


def _read_side(log: Path) -> dict[str, Any] | None:
    side = head_path(log)
    try:
        doc = json.loads(side.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise AuditIntegrityError(f"the head file {side} beside the audit log is damaged") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDE_FORMAT:
        raise AuditIntegrityError(f"{side} is not a privguard audit head file")
    return doc


def _iter_lines(fd: int, end: int) -> Iterator[bytes]:
    """The lines (with their newlines) of the first ``end`` bytes of the file."""
    pos, rest = 0, b""
    while pos < end:
        chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line + b"\n"
    if rest:
        yield rest


def _check_prefix(fd: int, end: int, side_seq: int, side_hash: str) -> tuple[str, int, str, str | None]:
    """Check the whole records in the first ``end`` bytes against the head file's ``side_seq``/``side_hash``.

    Returns the log id, the last record's seq and hash, and a problem (None
    when those records reach record ``side_seq``, it has ``side_hash``, and
    every record from it on is intact and chains onto the one before).
    """
    log_id, seq, prev = "", 0, GENESIS
    for pos, raw in enumerate(_iter_lines(fd, end), start=1):
        if pos < side_seq:
            seq = pos
            if pos == 1:
                try:
                    log_id = str(json.loads(raw)["log"])
                except (ValueError, KeyError, TypeError):
                    return log_id, seq, prev, "its first record is damaged"
            continue
        try:
            rec = json.loads(raw)
            rseq, rprev, digest = int(rec["seq"]), str(rec["prev"]), str(rec["hash"])
            if pos == 1:
                log_id = str(rec["log"])
        except (ValueError, KeyError, TypeError):
            return log_id, seq, prev, f"record {pos} is damaged"
        if rseq != pos or record_hash(rec) != digest:
            return log_id, seq, prev, f"record {pos} is damaged"
        if pos == side_seq and digest != side_hash:
            return log_id, seq, prev, f"record {pos} differs from the head file"
        if pos > side_seq and rprev != prev:
            return log_id, seq, prev, f"record {pos} does not chain onto record {pos - 1}"
        seq, prev = pos, digest
    if seq < side_seq:
        return (
            log_id,
            seq,
            prev,
            f"the torn tail cuts into records the head file says were written (it ends at {seq}, "
            f"the head file names {side_seq})",
        )
    return log_id, seq, prev, None


def _first_last_lines(fd: int, size: int) -> tuple[bytes, bytes]:
    """The first line and the last line (with its newline, if any) of the file."""
    first = b""
    pos = 0
    while b"\n" not in first and pos < size:
        chunk = os.pread(fd, min(65536, size - pos), pos)
        first += chunk
        pos += len(chunk)
    first = first.split(b"\n", 1)[0]
    back = 4096
    while True:
        start = max(0, size - back)
        data = os.pread(fd, size - start, start)
        body = data[:-1] if data.endswith(b"\n") else data
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            return first, data[cut + 1 :]
        back *= 4
