"""Verifying an audit log: the chain, every run's signed head, and the head files.

:func:`verify` reads the log line by line and stops at the first bad
position (1-based line number), naming it:

* a line that is not a record, or a record whose ``seq`` is not its line
  number (a record removed, inserted or reordered);
* a ``prev`` that is not the previous record's hash (the chain is broken);
* a ``hash`` that is not the hash of the record (the record was edited);
* a run whose end record's file count differs from the records it holds;
* a signature that does not verify, or a signed run without its signature,
  or (with ``public_key``) a run signed by another key;
* a log shorter than its side head file, or than a delivered
  ``AUDIT-HEAD.json`` says (the last records were cut off).

A run without an end record is reported as interrupted (a killed run); it
is not damage, but it is listed. So is a ``recovery`` record (the torn last
line of a crashed append, cut off when the log was next opened; it must
follow the record it names), as a note.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privguard.audit.chain import GENESIS, Record, head_message, record_hash
from privguard.audit.log import _read_side, head_path
from privguard.errors import AuditIntegrityError, ConfigError

_DETAILS = ("request_id", "request_sha256", "approval_id", "decision")


@dataclass
class RunInfo:
    """One run as the log records it."""

    run: str
    position: int
    command: str
    time: str
    user: str
    operator: str | None
    profile: str | None
    key_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    files: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    start: Record = field(default_factory=dict)
    end: Record | None = None
    signature: str = "unsigned"  # unsigned | valid | invalid | missing

    @property
    def outcome(self) -> str:
        return str(self.end["outcome"]) if self.end is not None else "interrupted"


@dataclass
class Recovery:
    """A ``recovery`` record: the torn tail of a crashed append was cut off when the log was next opened."""

    position: int
    time: str
    after_seq: int
    removed_bytes: int


@dataclass
class Report:
    """The result of :func:`verify`."""

    path: str
    records: int = 0
    log_id: str | None = None
    runs: list[RunInfo] = field(default_factory=list)
    bad_position: int | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bad_position is None

    def fail(self, position: int, problem: str) -> Report:
        self.bad_position, self.problem = position, problem
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.path,
            "ok": self.ok,
            "records": self.records,
            "log_id": self.log_id,
            "bad_position": self.bad_position,
            "problem": self.problem,
            "notes": self.notes,
            "recoveries": [
                {
                    "position": c.position,
                    "time": c.time,
                    "after_seq": c.after_seq,
                    "removed_bytes": c.removed_bytes,
                }
                for c in self.recoveries
            ],
            "runs": [
                {
                    "run": r.run,
                    "position": r.position,
                    "command": r.command,
                    "time": r.time,
                    "outcome": r.outcome,
                    "files": r.files,
                    "signature": r.signature,
                }
                for r in self.runs
            ],
        }


def load_public_key(path: str | Path) -> Any:
    from privguard.compliance.approval import PublicKey

    return PublicKey.load(path)


def _check_sig(end: Record, log_id: str, public_key: Any) -> str:
    from privguard.compliance.approval import PublicKey
    from privguard.errors import KeyMaterialError

    if end.get("signed_by") is None:
        return "unsigned"
    sig = end.get("sig")
    if not isinstance(sig, str):
        return "missing"
    try:
        embedded = PublicKey(base64.urlsafe_b64decode(str(end.get("public_key", "")).encode()))
        signature = bytes.fromhex(sig)
    except (ValueError, binascii.Error, KeyMaterialError):
        return "invalid"
    if embedded.key_id != end.get("signed_by"):
        return "invalid"
    key = public_key if public_key is not None else embedded
    if public_key is not None and public_key.key_id != embedded.key_id:
        return "other-key"
    msg = head_message(log_id, str(end["run"]), int(end["seq"]), str(end["hash"]), end.get("manifest_sha256"))
    return "valid" if key.verify(signature, msg) else "invalid"


def verify(
    path: str | Path,
    public_key: Any = None,
    *,
    heads: tuple[str | Path, ...] = (),
    require_signed: bool = False,
) -> Report:
    """Verify the whole log at ``path``; see the module docstring for what is checked.

    ``public_key`` (a :class:`~privguard.compliance.PublicKey` or its file)
    pins the key every signed run must be signed with; ``heads`` are
    ``AUDIT-HEAD.json`` files of delivered output folders, each of which must
    match a signed or unsigned run end in the log. ``require_signed`` makes an
    unsigned finished run a failure.
    """
    path = Path(path)
    if public_key is not None and not hasattr(public_key, "key_id"):
        public_key = load_public_key(public_key)
    report = Report(path=str(path))
    if not path.is_file():
        raise ConfigError(f"audit log {path} not found")
    runs: dict[str, RunInfo] = {}
    open_runs: set[str] = set()
    prev = GENESIS
    ends: dict[int, Record] = {}
    with open(path, "rb") as fh:
        for pos, raw in enumerate(fh, start=1):
            report.records = pos
            if not raw.endswith(b"\n"):
                return report.fail(
                    pos,
                    "the last record is cut short (a partial line; the next run cuts it off if nothing "
                    "synced is lost)",
                )
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError
                seq, rprev, digest, kind = rec["seq"], rec["prev"], rec["hash"], rec["type"]
            except (ValueError, KeyError, TypeError):
                return report.fail(pos, "not a valid audit record")
            if seq != pos:
                return report.fail(
                    pos,
                    f"record {seq} found where record {pos} belongs (records removed, inserted or reordered)",
                )
            if record_hash(rec) != digest:
                return report.fail(pos, "the record has been modified (its hash does not match)")
            if rprev != prev:
                return report.fail(pos, "the chain is broken (it does not link to the record before it)")
            prev = digest
            if pos == 1:
                if kind != "log":
                    return report.fail(pos, "the log does not start with its log record (records removed)")
                report.log_id = str(rec["log"])
                continue
            if kind == "log":
                return report.fail(pos, "a second log record (logs were spliced together)")
            run_id = str(rec.get("run"))
            if kind == "run":
                if run_id in runs:
                    return report.fail(pos, f"run {run_id} starts twice")
                prof = rec.get("profile")
                runs[run_id] = RunInfo(
                    run=run_id,
                    position=pos,
                    command=str(rec.get("command")),
                    time=str(rec.get("time")),
                    user=str(rec.get("user")),
                    operator=rec.get("operator"),
                    profile=prof.get("name") if isinstance(prof, dict) else None,
                    key_id=rec.get("key_id"),
                    start=rec,
                    details={k: rec[k] for k in _DETAILS if rec.get(k) is not None},
                )
                open_runs.add(run_id)
            elif kind in ("file", "end"):
                if run_id not in open_runs:
                    return report.fail(pos, f"a {kind} record of a run that is not open here (run {run_id})")
                info = runs[run_id]
                if kind == "file":
                    info.files += 1
                    st = str(rec.get("status"))
                    info.statuses[st] = info.statuses.get(st, 0) + 1
                else:
                    if rec.get("files") != info.files:
                        return report.fail(
                            pos,
                            f"run {run_id} ends saying it holds {rec.get('files')} file records, "
                            f"but {info.files} are in the log (records removed or inserted)",
                        )
                    info.end = rec
                    info.details.update({k: rec[k] for k in _DETAILS if rec.get(k) is not None})
                    info.signature = _check_sig(rec, report.log_id or "", public_key)
                    if info.signature in ("invalid", "missing", "other-key"):
                        what = {
                            "invalid": "its head signature does not verify",
                            "missing": "it names a signing key but carries no signature",
                            "other-key": "it is signed with another key than the one given",
                        }[info.signature]
                        return report.fail(pos, f"run {run_id}: {what}")
                    if require_signed and info.signature == "unsigned":
                        return report.fail(pos, f"run {run_id} is unsigned (its head has no signature)")
                    open_runs.discard(run_id)
                    ends[pos] = rec
            elif kind == "recovery":
                after, removed = rec.get("after_seq"), rec.get("removed_bytes")
                if (
                    after != pos - 1
                    or not isinstance(removed, int)
                    or isinstance(removed, bool)
                    or removed <= 0
                ):
                    return report.fail(pos, "a recovery record that does not follow the record it names")
                report.recoveries.append(
                    Recovery(position=pos, time=str(rec.get("time")), after_seq=after, removed_bytes=removed)
                )
            else:
                return report.fail(pos, f"unknown record type {kind!r}")
    report.runs = sorted(runs.values(), key=lambda r: r.position)
    if report.records == 0:
        return report.fail(1, "the log is empty")
    for c in report.recoveries:
        report.notes.append(
            f"record {c.position} is a crash recovery: {c.removed_bytes} bytes of a torn record after "
            f"record {c.after_seq} were removed (nothing that was synced)"
        )
    for r in report.runs:
        if r.end is None:
            report.notes.append(f"run {r.run} (record {r.position}) has no end: it was interrupted")
    side = _read_side(path)
    if side is not None:
        if side.get("log") != report.log_id:
            return report.fail(report.records, f"{head_path(path).name} belongs to another log")
        if int(side.get("seq", 0)) > report.records:
            return report.fail(
                report.records + 1,
                f"records from {report.records + 1} on are missing: {head_path(path).name} says the log "
                f"held {side['seq']} (the log was truncated)",
            )
    for head_file in heads:
        problem = _check_head(Path(head_file), report, path, public_key)
        if problem is not None:
            return report.fail(problem[0], problem[1])
    return report


def _check_head(head_file: Path, report: Report, log: Path, public_key: Any) -> tuple[int, str] | None:
    try:
        head = json.loads(head_file.read_bytes())
        seq, digest, run = int(head["seq"]), str(head["hash"]), str(head["run"])
    except FileNotFoundError:
        raise ConfigError(f"head file {head_file} not found") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise AuditIntegrityError(f"{head_file} is not a privguard audit head") from None
    if head.get("log") != report.log_id:
        return report.records, f"{head_file.name} is the head of another log"
    if seq > report.records:
        return (
            report.records + 1,
            f"records from {report.records + 1} on are missing ({head_file.name} names {seq})",
        )
    rec = _record_at(log, seq)
    if rec.get("hash") != digest or rec.get("run") != run or rec.get("type") != "end":
        return seq, f"record {seq} is not the run end that {head_file.name} names"
    if head.get("sig") != rec.get("sig"):
        return seq, f"the signature in {head_file.name} differs from the log's"
    if rec.get("manifest_sha256") != head.get("manifest_sha256"):
        return seq, f"the manifest hash in {head_file.name} differs from the log's"
    sig = _check_sig(rec, report.log_id or "", public_key)
    if sig in ("invalid", "missing", "other-key"):
        return seq, f"the head signature of run {run} does not verify"
    return None


def _record_at(log: Path, seq: int) -> Record:
    with open(log, "rb") as fh:
        for pos, raw in enumerate(fh, start=1):
            if pos == seq:
                rec: Record = json.loads(raw)
                return rec
    return {}


def iter_records(path: str | Path) -> list[Record]:
    """Every record of the log (after :func:`verify`; unparsable lines raise)."""
    out: list[Record] = []
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                out.append(json.loads(raw))
            except ValueError:
                raise AuditIntegrityError(f"audit log {path} holds a line that is not a record") from None
    return out
