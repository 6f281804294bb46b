"""Finding a local file's records: the sender's side of the keyed hashes.

The log stores the input path and the input bytes' SHA-256 only as keyed
hashes (HMAC with the project key's audit sub-key). With the key, the sender
recomputes both for a local file and finds every record of it (by path, or by
content when the file was moved); without the key nobody can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from privguard.audit.log import file_sha256, keyed, path_token
from privguard.audit.verify import iter_records
from privguard.pseudonym.keys import ProjectKey


@dataclass(frozen=True)
class Match:
    """One record of a local file."""

    file: str
    seq: int
    run: str
    by: str  # "path", "content" or "path+content"
    status: str
    output: str | None


def find(log: str | Path, key: ProjectKey, files: list[Path]) -> list[Match]:
    """Every file record of ``files`` in ``log`` (matched by keyed path or keyed content hash)."""
    lookup = key.derive("audit", "lookup")
    wanted: dict[str, tuple[str, str]] = {}
    by_content: dict[str, str] = {}
    for f in files:
        wanted[path_token(lookup, f)] = (str(f), "path")
        if f.is_file():
            by_content[keyed(lookup, "sha256", file_sha256(f))] = str(f)
    out: list[Match] = []
    for rec in iter_records(log):
        if rec.get("type") != "file":
            continue
        p = wanted.get(str(rec.get("input")))
        c = by_content.get(str(rec.get("input_sha256")))
        if p is None and c is None:
            continue
        by = "path+content" if p is not None and c is not None else ("path" if p is not None else "content")
        name = p[0] if p is not None else str(c)
        out.append(Match(name, int(rec["seq"]), str(rec["run"]), by, str(rec["status"]), rec.get("output")))
    return out
