"""The pixel screen in front of CRAFT (issue 11): recall on text-bearing frames, share of
text-free frames dropped, time per frame.

    .venv/bin/python benchmarks/screen_recall.py [--ct .bench/corpus-600/dicom]

Text-bearing frames: the generated sets of ``tests/pixels/test_px_synthetic.py`` (FAST, two
randomized seeds, two second-pass seeds) and the TCIA pseudo-PHI images. Text-free frames: the
CT images of the header benchmark's corpus (``benchmarks/corpus.py``) when ``--ct`` is given,
and the generated files without text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pixels"))

import synth  # noqa: E402
import test_px_synthetic as px  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from privguard.pixels.decode import load
    from privguard.pixels.render import render
    from privguard.pixels.screen import screen

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ct", type=Path, help="a folder of text-free CT files (benchmarks/corpus.py)")
    args = ap.parse_args(argv)
    specs = (
        px.FAST + px.random_specs(16, 7) + px.random_specs(16, 8) + px.second_pass_specs(12, 11)
        + px.second_pass_specs(12, 5)
    )  # fmt: skip
    times: list[float] = []
    pos = passed = neg = dropped = 0
    with tempfile.TemporaryDirectory() as tmp:
        for s in specs:
            spec = dict(s)
            spec["name"] = f"{spec['name']}_{spec['seed']}"
            c = synth.build(out_dir=Path(tmp), **spec)  # type: ignore[arg-type]
            gray = render(load(c.path)).gray
            for f in range(gray.shape[0]):
                t0 = time.perf_counter()
                ok = screen(gray[f]).may_hold_text
                times.append(time.perf_counter() - t0)
                if any(f in g.frames for g in c.regions):
                    pos, passed = pos + 1, passed + ok
                else:
                    neg, dropped = neg + 1, dropped + (not ok)
    pseudo = [
        p for p in sorted((ROOT / "tests" / "data" / "pseudo-phi").glob("*.dcm")) if "no_pixels" not in p.name
    ]
    pseudo_ok = sum(screen(render(load(p)).gray[0]).may_hold_text for p in pseudo)
    print(f"generated text-bearing frames: {passed}/{pos} passed ({passed / max(1, pos):.1%})")
    print(f"TCIA pseudo-PHI images: {pseudo_ok}/{len(pseudo)} passed")
    print(f"generated text-free frames: {dropped}/{neg} dropped")
    if args.ct is not None:
        n = drop = 0
        for p in sorted(args.ct.rglob("*.dcm")):
            try:
                gray = render(load(p)).gray
            except Exception:
                continue
            t0 = time.perf_counter()
            ok = screen(gray[0]).may_hold_text
            times.append(time.perf_counter() - t0)
            n, drop = n + 1, drop + (not ok)
        print(f"CT frames (text-free): {drop}/{n} dropped ({drop / max(1, n):.1%})")
    print(f"time per frame: median {1000 * statistics.median(times):.1f} ms, max {1000 * max(times):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
