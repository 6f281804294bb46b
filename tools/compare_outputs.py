"""Scrub fixed inputs with whichever privguard is on ``PYTHONPATH`` and record every output's bytes.

Used to prove a speed change leaves outputs byte-identical: run it once with the old code
(``PYTHONPATH=/tmp/pg-old``), once with the new, and compare the two JSON files::

    PYTHONPATH=/tmp/pg-old .venv/bin/python tools/compare_outputs.py /tmp/old.json
    .venv/bin/python tools/compare_outputs.py /tmp/new.json
    .venv/bin/python tools/compare_outputs.py --diff /tmp/old.json /tmp/new.json

Inputs: the three benchmark corpora under ``.bench`` (as many as exist) and pydicom's bundled
test files, under the ``basic`` and ``research`` profiles, with a fixed key. Each record is the
output's relative path and SHA-256, or the refusal reason.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _inputs() -> list[Path]:
    from pydicom.data import get_testdata_file

    files: list[Path] = []
    for name in ("corpus-600", "table-300", "enhanced-100"):
        d = REPO / ".bench" / name
        if d.exists():
            files += sorted(p for p in d.rglob("*") if p.is_file() and p.name != "manifest.json")
    # pydicom's bundled files only (get_testdata_files would try to download the others).
    bundled = Path(str(get_testdata_file("CT_small.dcm"))).parent
    files += sorted(p for p in bundled.iterdir() if p.is_file())
    return files


def record(out_json: Path) -> None:
    import privguard
    from privguard.deidentifier import Deidentifier
    from privguard.pseudonym.keys import ProjectKey

    key = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))
    result: dict[str, str] = {}
    files = _inputs()
    for profile in ("basic", "research"):
        deid = Deidentifier(profile, key)
        with tempfile.TemporaryDirectory() as tmp:
            for i, path in enumerate(files):
                out = Path(tmp) / str(i)
                r = deid.file(path, out)
                rel = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
                if r.status == "ok" and r.output:
                    digest = hashlib.sha256((out / r.output).read_bytes()).hexdigest()
                    result[f"{profile}:{rel}"] = f"ok {r.output} {digest} {sorted(r.counts.items())}"
                else:
                    result[f"{profile}:{rel}"] = f"{r.status} {r.reason}"
        deid.close()
    out_json.write_text(json.dumps(result, indent=0, sort_keys=True))
    print(f"{len(result)} records from {Path(privguard.__file__).parent} -> {out_json}")


def diff(a: Path, b: Path) -> int:
    old, new = json.loads(a.read_text()), json.loads(b.read_text())
    bad = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    for k in bad[:20]:
        print(f"{k}\n  old: {old.get(k)}\n  new: {new.get(k)}")
    print(f"{len(old)} vs {len(new)} records; {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "--diff":
        sys.exit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
    record(Path(sys.argv[1]))
