#!/usr/bin/env python3
"""`make demo`: scrub the synthetic sample set in examples/sample and show what happened.

1. Makes a project key in .demo/project.key (mode 0600) unless one exists.
2. Runs `privguard scrub examples/sample --out demo-out ...` (the real CLI).
3. Shows one file before and after (the sample data is synthetic, so showing
   its "PHI" here is harmless; privguard itself never prints values).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"
DEMO = ROOT / ".demo"


def run(args: list[str]) -> int:
    print("$ privguard " + " ".join(args), flush=True)
    return subprocess.call([sys.executable, "-m", "privguard_cli.main", *args])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "demo-out")
    ap.add_argument("--profile", default="basic")
    args = ap.parse_args()
    DEMO.mkdir(exist_ok=True)
    key = DEMO / "project.key"
    if not key.exists():
        run(["keys", "new", "--out", str(key)])
    if args.out.exists():
        shutil.rmtree(args.out)
    report = DEMO / "report.jsonl"
    previews = DEMO / "previews"
    shutil.rmtree(previews, ignore_errors=True)
    code = run(
        [
            "scrub",
            str(SAMPLE),
            "--out",
            str(args.out),
            "--key-file",
            str(key),
            "--profile",
            args.profile,
            "--report",
            str(report),
            "--previews",
            str(previews),
            "--workers",
            "2",
        ]
    )
    if code >= 2:  # configuration error: nothing was processed
        return code
    # One file failing (examples/sample/broken_transfer.dcm is truncated on purpose) is expected.
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    failed = [x for x in lines if x["status"] == "failed"]
    expected_failure = len(failed) == 1 and failed[0]["input"].endswith("broken_transfer.dcm")
    show_before_after(lines)
    print(f"\nreport (stays at the sender, it holds original paths): {report}")
    if any(previews.glob("*.png")):
        print(f"redaction previews for review: {previews}")
    print(f"de-identified output: {args.out}")
    return 0 if code == 0 or (code == 1 and expected_failure) else code


def show_before_after(lines: list[dict[str, object]]) -> None:
    import pydicom

    entry = next(x for x in lines if str(x["input"]).endswith("report.dcm") and x["status"] == "ok")
    before = pydicom.dcmread(str(entry["input"]))
    after = pydicom.dcmread(ROOT / "demo-out" / str(entry["output"]))
    print(f"\none file, before -> after (synthetic data): {entry['output']}")
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "StudyDate",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyInstanceUID",
        "SOPInstanceUID",
    ):
        print(f"  {kw:24} {str(before.get(kw, '-'))[:44]:46} -> {str(after.get(kw, '(removed)'))[:46]}")
    text_before, text_after = before.ContentSequence[0].TextValue, after.ContentSequence[0].TextValue
    print(f"  {'SR TextValue':24} {text_before[:44]:46} -> {text_after[:46]}")
    print(f"  {'DeidentificationMethod':24} {'':46} -> {list(after.DeidentificationMethod)}")


if __name__ == "__main__":
    sys.exit(main())
