"""Where the burned-in text stage's CPU time goes on 512 x 512 frames, against the naive call.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ocr_profile.py [--frames 4] [--rounds 2]

Runs ``OCRPixelStage.process_many`` over the ``ocr_throughput.py`` 512 x 512 ultrasound frames and
sums this process's CPU time per engine call kind: main-pass detection and recognition,
verification detection and recognition (with the number of detector inputs and recognizer crops);
then the naive loop (``reader.readtext`` per frame) and its detection alone (``reader.detect``).
CPU time (``time.process_time``) moves less with the machine's load than wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "pixels"))

import ocr_throughput as ot  # noqa: E402
import synth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)

    import privguard.pixels.stage as st
    from privguard.pixels.ocr import get_engine

    engine: Any = get_engine("cpu")
    phase = ["main"]
    calls: dict[tuple[str, str], list[float]] = {}
    detect, recognize = engine.detect, engine.recognize

    def timed(kind: str, fn: Any) -> Any:
        def run(items: Any) -> Any:
            c0 = time.process_time()
            out = fn(items)
            got = calls.setdefault((phase[0], kind), [0, 0.0])
            got[0] += len(items)
            got[1] += time.process_time() - c0
            return out

        return run

    engine.detect, engine.recognize = timed("detect", detect), timed("recognize", recognize)
    verify = st.OCRPixelStage._verify

    def in_verification(self: Any, files: Any) -> None:
        phase[0] = "verify"
        try:
            verify(self, files)
        finally:
            phase[0] = "main"

    st.OCRPixelStage._verify = in_verification  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="privguard-ocr-profile-") as tmp:
        cases = [
            synth.build(
                f"us512_{k}",
                Path(tmp),
                modality="US",
                rows=512,
                cols=512,
                seed=500 + k,
                phi_items=5,
                nonphi_items=4,
            )
            for k in range(args.frames)
        ]
        stage = ot._stage("cpu", engine)
        stage.process_many(ot._items(cases[:1]))  # warm-up
        frames = [f for c in cases for f in ot._rgb_frames(c)]
        reader = engine._reader
        reader.readtext(frames[0])
        for r in range(args.rounds):
            calls.clear()
            c0 = time.process_time()
            stage.process_many(ot._items(cases))
            total = time.process_time() - c0
            parts = ", ".join(f"{p} {k}: {int(n)} in {s:.2f} s" for (p, k), (n, s) in calls.items())
            c0 = time.process_time()
            for f in frames:
                reader.readtext(f)
            naive = time.process_time() - c0
            c0 = time.process_time()
            for f in frames:
                reader.detect(f)
            naive_detect = time.process_time() - c0
            print(f"round {r + 1}: stage {total:.2f} s CPU ({parts})")
            print(
                f"round {r + 1}: naive {naive:.2f} s CPU (detection alone {naive_detect:.2f} s); "
                f"ratio {naive / total:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
