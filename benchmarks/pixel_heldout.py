"""Quality of the burned-in text stage on generated files the tests do not use (issue 11).

Usage (from the repository root)::

    .venv/bin/python benchmarks/pixel_heldout.py --json before.json
    .venv/bin/python benchmarks/pixel_heldout.py --json after.json --compare before.json
    .venv/bin/python benchmarks/pixel_heldout.py --hard 24 --seed 31   # the adversarial set

The held-out set is ``second_pass_specs(12, seed=5)`` + ``random_specs(8, seed=9)`` of
``tests/pixels/test_px_synthetic.py`` (20 files: US/CR/DX/MG/CT/SC/XA, vertical lines, large
banners, side panels, 6- and 10-frame cines), run through ``Deidentifier.files`` on CPU and
scored by ``tests/pixels/scoring.py``: PHI regions redacted, non-PHI regions kept, pixels changed
outside text lines, and files claimed clean (Burned In Annotation NO) with PHI still readable.
Each output's pixel values are hashed, so ``--compare`` says which files' pixels changed between
two runs of different code (same seeds).

``--hard N --seed S`` runs ``hard_specs(N, S)`` instead: the adversarial generator
(``synth.build(hard=True)``: names with diacritics, month-name and two-digit-year dates, oblique
and italic faces, text at the very edge, inverse-video labels, low-contrast text, a scale bar
across a line, lossy JPEG at quality 60-88 and YBR, MONOCHROME1 and windowed signed 16-bit), and
lists every PHI region missed and every non-PHI region masked, by kind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pixels"))

import scoring  # noqa: E402
import synth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--compare", type=Path, help="a previous run's JSON: list files whose pixels differ")
    ap.add_argument("--second-pass", type=int, default=12)
    ap.add_argument("--random", type=int, default=8)
    ap.add_argument("--hard", type=int, default=0, help="run N adversarial files instead")
    ap.add_argument("--seed", type=int, default=31, help="seed of the adversarial set")
    ap.add_argument("--only", default="", help="comma-separated file names to run (e.g. hard_10,hard_16)")
    args = ap.parse_args(argv)

    import pydicom
    import test_px_synthetic as tps

    from privguard.deidentifier import Deidentifier, PixelOptions
    from privguard.pixels.decode import load
    from privguard.pseudonym.keys import ProjectKey

    if args.hard:
        specs = tps.hard_specs(args.hard, seed=args.seed)
    else:
        specs = tps.second_pass_specs(args.second_pass, seed=5) + tps.random_specs(args.random, seed=9)
    if args.only:
        wanted = set(args.only.split(","))
        specs = [s for s in specs if s["name"] in wanted]
    misses: list[dict[str, Any]] = []
    files: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="privguard-heldout-") as tmp:
        root = Path(tmp)
        cases = [synth.build(out_dir=root / "in", **s) for s in specs]  # type: ignore[arg-type]
        key = ProjectKey.generate()
        deid = Deidentifier("basic", key, pixels=PixelOptions(ocr="auto", device="cpu"))
        t0 = time.perf_counter()
        try:
            results = deid.files([c.path for c in cases], root / "out")
        finally:
            deid.close()
        seconds = time.perf_counter() - t0
        scores = []
        false_no = 0
        for c, r in zip(cases, results, strict=True):
            if r.status != "ok" or r.output is None:
                files[c.name] = {"status": r.status}
                continue
            before = load(c.path).frames
            after = load(root / "out" / r.output).frames
            truths = [
                scoring.Truth(g.text, g.phi, g.kind, g.left, g.top, g.width, g.height, g.frames, g.mask)
                for g in c.regions
            ]
            s = scoring.score(c.name, before, after, truths)
            scores.append(s)
            ds = pydicom.dcmread(root / "out" / r.output, stop_before_pixels=True)
            leaked = [x.text for x in s.regions if x.phi and not x.ok]
            misses += [
                {"file": c.name, "phi": x.phi, "kind": x.kind, "text": x.text}
                for x in s.regions
                if not x.ok and x.kind != "label"
            ]
            if leaked and ds.get("BurnedInAnnotation") == "NO":
                false_no += 1
            rep = r.pixels or {}
            files[c.name] = {
                "pixels_sha256": hashlib.sha256(after.tobytes()).hexdigest(),
                "verification": rep.get("verification"),
                "rounds": rep.get("verification_rounds"),
                "burned_in_annotation": str(ds.get("BurnedInAnnotation", "")),
                "phi_missed": len(leaked),
                "nonphi_masked": sum(1 for x in s.regions if not x.phi and not x.ok),
                "outside_share": round(s.outside_share, 6),
            }
    summary = scoring.summary(scores)
    by_kind: dict[str, list[int]] = {}
    for sc in scores:
        for x in sc.regions:
            if x.kind == "label":
                continue
            got = by_kind.setdefault(f"{'phi' if x.phi else 'non-phi'}:{x.kind}", [0, 0])
            got[0] += int(x.ok)
            got[1] += 1
    out = {
        "seconds": round(seconds, 1),
        "summary": summary,
        "false_clean_claims": false_no,
        "failed_files": [n for n, v in files.items() if v.get("status")],
        "by_kind": {k: f"{a}/{b}" for k, (a, b) in sorted(by_kind.items())},
        "misses": misses,
        "files": files,
    }
    print(json.dumps({k: v for k, v in out.items() if k != "files"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    if args.compare:
        old = json.loads(args.compare.read_text())["files"]
        same = [n for n in files if old.get(n, {}).get("pixels_sha256") == files[n].get("pixels_sha256")]
        diff = [n for n in files if n not in same]
        print(f"pixels identical to {args.compare.name}: {len(same)}/{len(files)}; differ: {diff}")
        for n in diff:
            print(" ", n, "before", old.get(n), "after", files[n])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
