"""The audit log: a tamper-evident record of every de-identified output that leaves the sender.

One append-only JSON Lines file (default ``$XDG_STATE_HOME/privguard/audit.jsonl``,
``~/.local/state/privguard/audit.jsonl`` without it; ``PRIVGUARD_AUDIT_LOG`` or
``--audit-log`` choose another). Every record carries the SHA-256 of the one
before it; each run's end record is the run's chain head and may be signed with
an Ed25519 key (``privguard keys new-signing``). No PHI: input paths and input
content hashes are stored as keyed hashes (HMAC with a sub-key of the project
key), outputs by their pseudonymous path and SHA-256. See docs/audit.md.

The API (stable; the DICOM node and the export use it)::

    from privguard.audit import AuditLog, verify

    log = AuditLog.open(path)                     # None: the default location
    run_id = log.begin_run(command="dicom-node", key=project_key, project="p",
                           profile=profile, operator="A. Smith", out=out_dir)
    log.file_record(input=path, status="ok", output="P/S/R/I.dcm", out_dir=out_dir,
                    counts={"X": 40}, pixels=None)  # queued; one writer thread appends
    outputs = log.flush()                         # {relative path: sha256} of this run
    head = log.end_run(outcome="success", counts={...}, manifest_sha256=...,
                       signing_key=None)          # fsync'd before it returns
    log.close()

    report = verify(path, public_key=None)        # report.ok, report.bad_position, report.problem

:func:`audited_scrub` runs a whole scrub this way and writes ``MANIFEST.sha256``
and ``AUDIT-HEAD.json`` into the output folder; :func:`verify_delivery` checks
such a folder at the recipient. :mod:`privguard.audit.interop` turns runs into
FHIR R4 AuditEvent resources and DICOM PS3.15 A.5 audit messages.
"""

from __future__ import annotations

from privguard.audit.log import AuditLog, RunHead, default_log_path
from privguard.audit.manifest import HEAD, MANIFEST, verify_delivery, write_head, write_manifest
from privguard.audit.run import audited_scrub
from privguard.audit.verify import Report, RunInfo, iter_records, verify

__all__ = [
    "HEAD",
    "MANIFEST",
    "AuditLog",
    "Report",
    "RunHead",
    "RunInfo",
    "audited_scrub",
    "default_log_path",
    "iter_records",
    "verify",
    "verify_delivery",
    "write_head",
    "write_manifest",
]
