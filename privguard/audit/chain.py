"""The hash chain: how a record is encoded, hashed and linked to the one before it.

Every record is one line of canonical JSON (sorted keys, no spaces, ASCII).
Its ``hash`` is the SHA-256 of the canonical JSON of the record without its
``hash`` and ``sig`` fields, and every record carries the ``hash`` of the
record before it in ``prev`` (the first record's ``prev`` is 64 zeros), so a
changed, removed, inserted or reordered record breaks the chain at its
position. A run's last record (``type: end``) may carry ``sig``, an Ed25519
signature over :func:`head_message` of that record: the signed chain head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

#: Version of the record format.
FORMAT_VERSION = 1
#: ``prev`` of the first record.
GENESIS = "0" * 64
HEAD_FORMAT = "privguard-audit-head"

Record = dict[str, Any]


def canonical(data: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact separators, ASCII only, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


def record_hash(record: Record) -> str:
    """SHA-256 (hex) of a record's canonical JSON without ``hash`` and ``sig``."""
    body = {k: v for k, v in record.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(record: Record, seq: int, prev: str, sign: Callable[[Record], str] | None = None) -> bytes:
    """Give ``record`` its position and link, compute its hash, return its line (with newline).

    ``sign``, for a run's end record, returns the hex signature of the sealed record's head.
    """
    record["seq"] = seq
    record["prev"] = prev
    record.pop("sig", None)
    record["hash"] = record_hash(record)
    if sign is not None:
        record["sig"] = sign(record)
    return canonical(record) + b"\n"


def head_message(log_id: str, run: str, seq: int, digest: str, manifest: str | None) -> bytes:
    """The bytes a run's head signature covers: the log, the run, the position and hash of its end
    record, and the SHA-256 of the manifest the run wrote (so a recipient without the log can check it)."""
    return canonical(
        {
            "format": HEAD_FORMAT,
            "v": FORMAT_VERSION,
            "log": log_id,
            "run": run,
            "seq": seq,
            "hash": digest,
            "manifest_sha256": manifest,
        }
    )
