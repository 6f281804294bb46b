"""Building small audit logs and tampering with them."""

from __future__ import annotations

import json
from pathlib import Path

from privguard.audit import AuditLog
from privguard.compliance.approval import SigningKey
from privguard.pseudonym.keys import ProjectKey

SECRET_PATH_PART = "Doe_Jane_1961"


def make_log(
    tmp: Path, key: ProjectKey, signing: SigningKey | None, runs: int = 2, files: int = 3
) -> tuple[Path, list[str]]:
    """A log with ``runs`` runs of ``files`` file records each; inputs live under a PHI-like folder."""
    log = tmp / "state" / "audit.jsonl"
    src = tmp / SECRET_PATH_PART
    out = tmp / "out"
    src.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    run_ids = []
    for r in range(runs):
        with AuditLog.open(log) as audit:
            run_ids.append(
                audit.begin_run(command="scrub", key=key, inputs=[src], out=out, operator="tester")
            )
            for i in range(files):
                inp = src / f"{SECRET_PATH_PART}_{r}_{i}.dcm"
                inp.write_bytes(b"DICM" + bytes([r, i]) * 50)
                rel = f"P{r}/S/R/{i}.dcm"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(b"out" + bytes([r, i]))
                audit.file_record(input=inp, status="ok", output=rel, out_dir=out, counts={"X": 2, "U": 1})
            audit.flush()
            audit.end_run(
                outcome="success", counts={"ok": files}, manifest_sha256="0" * 64, signing_key=signing
            )
    return log, run_ids


def lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


def write_lines(log: Path, rows: list[bytes]) -> None:
    log.write_bytes(b"".join(rows))


def edit(log: Path, position: int, field: str, value: object) -> None:
    """Change one field of the record at ``position`` (1-based), keeping it valid JSON."""
    rows = lines(log)
    rec = json.loads(rows[position - 1])
    rec[field] = value
    rows[position - 1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, rows)
