"""Run fresh mutants through ``privguard scrub --ocr off`` as a user does (not collected by pytest).

    cd tests && ../.venv/bin/python -m fuzz.cli_campaign --seed 9500 --count 1000 --profile research

The mutants go into one input folder whose path holds a marker of its own (original paths
are PHI). The run must exit 0 or 1, print no traceback, report every input exactly once,
write only outputs that pass :func:`fuzz.mutants.output_problems`, leave nothing of a
failed input; no marker of the files' contents may reach its stdout/stderr, and no marker
at all (the path's included) the audit log, any file name under ``--out`` or any file
under it that is not an output (``MANIFEST.sha256``, ``AUDIT-HEAD.json``, the journal).
The console and ``--report`` name failed inputs by their paths: they stay at the sender.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pydicom

from fuzz.mutants import Mutant, fresh_mutants, mutants, output_problems, planted_seeds

PATH_MARKER = b"QZXPATHMARK"


def _seed_uids() -> dict[str, bytes]:
    """Each planted seed file's SOP Instance UID."""
    out = {}
    for p in planted_seeds():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            uid = pydicom.dcmread(io.BytesIO(p.data), force=True).get("SOPInstanceUID")
        if uid:
            out[p.name] = str(uid).encode()
    return out


def _unique_instance(data: bytes, uid: bytes | None, i: int) -> bytes:
    """``data`` with its seed's SOP Instance UID made unique to mutant ``i`` (same length).

    Mutants of one seed share its SOP Instance UID, and a run refuses every input after
    the first with a given UID but other content (a duplicate instance): without this most
    mutants would be refused for that alone, and the run would test little else.
    """
    if uid is None or len(uid) < 12:
        return data
    new = b"2.25.1" + b"%0*d" % (len(uid) - 6, i)
    return data.replace(uid, new)


def run(seed: int, count: int, profile: str, old: bool, root: Path, timeout: float) -> list[str]:
    gen = mutants if old else fresh_mutants
    ms: dict[str, Mutant] = {}
    src = root / "in" / PATH_MARKER.decode()
    src.mkdir(parents=True)
    uids = _seed_uids()
    for i, m in enumerate(gen(seed, count)):
        data = _unique_instance(m.data, uids.get(m.seed_file), i)
        (src / f"{i}.dcm").write_bytes(data)
        ms[str(src / f"{i}.dcm")] = Mutant(m.seed_file, m.ops, data, m.markers, m.copies)
    key = root / "key.json"
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "privguard", "keys", "new", "--out", key], check=True, capture_output=True)
    out, report, audit = root / "out", root / "report.jsonl", root / "audit.jsonl"
    cmd: list[str | Path] = [
        bin_dir / "privguard", "scrub", root / "in", "--out", out, "--key-file", key, "--profile", profile,
        "--ocr", "off", "--workers", "1", "--report", report, "--audit-log", audit, "--json",
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            cmd, capture_output=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": ""}
        )
    except subprocess.TimeoutExpired:
        return [f"seed {seed}: the run did not end within {timeout:.0f} s (hang)"]
    took = time.monotonic() - t0
    problems: list[str] = []
    if r.returncode not in (0, 1):
        problems.append(f"seed {seed}: exit code {r.returncode}: {r.stderr[-400:]!r}")
    if b"Traceback" in r.stdout + r.stderr:
        problems.append(f"seed {seed}: a traceback was printed")
    contents = {mk for m in ms.values() for mk in m.markers}
    every = contents | {PATH_MARKER}
    # The console names a failed file by its path (at the sender, by design); the audit log must not.
    for name, blob, marks in (
        ("stdout", r.stdout, contents),
        ("stderr", r.stderr, contents),
        ("audit log", audit.read_bytes(), every),
    ):
        for mk in marks:
            if mk in blob:
                problems.append(f"seed {seed}: a marker ({mk[-3:]!r}) in the {name}")
    lines = [json.loads(x) for x in report.read_text().splitlines() if x.strip()]
    seen = collections.Counter(x["input"] for x in lines)
    if set(seen) != set(ms) or max(seen.values()) != 1:
        problems.append(f"seed {seed}: {len(seen)} inputs reported for {len(ms)} (each once?)")
    outputs = set()
    statuses: collections.Counter[str] = collections.Counter()
    for x in lines:
        found = ms.get(x["input"])
        statuses[x["status"]] += 1
        if found is None:
            continue
        m = found
        where = f"seed {seed} #{Path(x['input']).stem} ({m.seed_file}, {'+'.join(m.ops)})"
        if x["status"] == "ok":
            path = out / x["output"]
            outputs.add(path)
            for v in output_problems(m, path):
                problems.append(f"{where}: {v}"[:400])
        elif x["status"] == "failed" and not x.get("reason"):
            problems.append(f"{where}: failed without a reason")
        elif x["status"] == "failed" and str(x.get("reason", "")).startswith("unexpected error"):
            problems.append(f"{where}: {x['reason']}"[:400])
    for f in out.rglob("*"):
        rel = str(f.relative_to(out)).encode()
        for mk in every:
            if mk in rel:
                problems.append(f"seed {seed}: a marker in an output path")
        if f.is_file() and f not in outputs and f.name != "lock":
            if f.suffix == ".dcm":
                problems.append(f"seed {seed}: {rel.decode()} is not the output of an ok input")
            blob = f.read_bytes()
            for mk in every:
                if mk in blob:
                    problems.append(f"seed {seed}: a marker ({mk[-3:]!r}) in {f.name}")
    print(f"seed {seed}, {count} mutants, {profile}: exit {r.returncode} in {took:.0f} s, {dict(statuses)}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--profile", default="basic")
    ap.add_argument("--old", action="store_true", help="the original operators (mutants) instead")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pgcli-"))
    try:
        problems = run(args.seed, args.count, args.profile, args.old, root, args.timeout)
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(root)
    print(f"{len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
