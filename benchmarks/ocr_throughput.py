"""Burned-in text throughput (issue 3): privguard's pixel stage against a naive EasyOCR loop.

Usage (from the repository root, with the project's virtual environment)::

    .venv/bin/python benchmarks/ocr_throughput.py                  # CPU, the default sizes
    .venv/bin/python benchmarks/ocr_throughput.py --quick          # a smoke run
    .venv/bin/python benchmarks/ocr_throughput.py --n512 4 --rounds 3 --n2k 1   # issue 11 figures
    .venv/bin/python benchmarks/ocr_throughput.py --device cuda --n512 256 --n2k 8   # on a GPU machine
    .venv/bin/python benchmarks/ocr_throughput.py --json ocr.json --markdown

What it measures, all in one process with the same EasyOCR model (loaded once, warmed up):

1. **512 x 512 frames** (ultrasound screens with a burned-in banner): privguard's pixel stage end
   to end (decode, render, detection + recognition batched across files, PHI decision, masks,
   verification, encoding) in frames/s, in ``--rounds`` rounds alternated with the naive loop
   (the ratio is the total of the naive rounds over the stage's, wall clock and CPU time), and
   its detection + recognition alone
   (``TextFinder.find`` over all frames at once); against the naive loop: one
   ``reader.readtext(frame)`` per frame, unbatched, EasyOCR defaults.
2. **2048 x 2560 frames** (CR, MONOCHROME1 12-bit, text 14-48 px high): the stage end to end
   against ``readtext`` at full resolution, and the *recall* of both: a ground-truth text region
   counts as found when 90% of its text pixels lie in the boxes found (stage: word boxes; naive:
   readtext boxes); plus the stage's redaction recall of PHI regions.
3. **A 100-frame cine** (640 x 480 RGB, static banner, moving speckle, a transient PHI line):
   the stage end to end against per-frame OCR; per-frame OCR is timed on ``--naive-cine-sample``
   frames and scaled to all frames (stated in the output).

The synthetic images come from ``tests/pixels/synth.py`` (seeded). Timings on a shared machine
vary from run to run; ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pixels"))

import scoring  # noqa: E402
import synth  # noqa: E402


def _stage(device: str, engine: Any) -> Any:
    from privguard.pixels.allowlist import load_allowlist
    from privguard.pixels.stage import OCRPixelStage

    return OCRPixelStage(ocr="on", device=device, allowlist=load_allowlist(), engine=engine)


def _items(cases: list[synth.Case]) -> list[Any]:
    from privguard.dicomio import read_source
    from privguard.text.context import PhiContext

    out = []
    for c in cases:
        src = read_source(c.path)
        out.append((src, PhiContext.from_dataset(src.ds)))
    return out


def _rgb_frames(case: synth.Case) -> list[np.ndarray]:
    from privguard.pixels.decode import load
    from privguard.pixels.render import render

    r = render(load(case.path))
    return [r.color_frame(i) for i in range(r.gray.shape[0])]


def _covered(region: synth.Region, boxes: list[tuple[int, int, int, int]]) -> bool:
    cover = np.zeros_like(region.mask)
    for x0, y0, x1, y1 in boxes:
        cover[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    text = region.mask
    return bool(text.any()) and float(cover[text].mean()) >= 0.9


def _naive_boxes(result: list[Any]) -> list[tuple[int, int, int, int]]:
    out = []
    for pts, _text, _conf in result:
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        out.append((int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1))
    return out


def _redaction_recall(cases: list[synth.Case], outcomes: list[Any]) -> float:
    import pydicom

    from privguard.pixels.decode import decode_dataset, load

    ok = total = 0
    for c, o in zip(cases, outcomes, strict=True):
        before = load(c.path).frames
        if o.pixel_data is None:
            after = before
        else:
            ds = pydicom.dcmread(c.path)
            for k, v in o.elements.items():
                setattr(ds, k, v)
            if o.transfer_syntax:
                ds.file_meta.TransferSyntaxUID = o.transfer_syntax
            ds.PixelData = o.pixel_data
            after = decode_dataset(ds).frames
        truths = [
            scoring.Truth(r.text, r.phi, r.kind, r.left, r.top, r.width, r.height, r.frames, r.mask)
            for r in c.regions
        ]
        s = scoring.score(c.name, before, after, truths)
        phi = [r for r in s.regions if r.phi]
        ok += sum(r.ok for r in phi)
        total += len(phi)
    return ok / max(1, total)


def bench_512(engine: Any, device: str, n: int, tmp: Path, rounds: int = 3) -> dict[str, Any]:
    """Stage end to end against the naive loop over the same frames, in ``rounds`` alternated
    rounds (stage first in even rounds, naive first in odd ones: on a shared machine the load
    moves within a minute); the ratio is total naive time over total stage time, wall clock and
    this process's CPU time."""
    from privguard.pixels.render import luminance
    from privguard.pixels.textfind import FrameJob, TextFinder

    cases = [
        synth.build(
            f"us512_{k}", tmp, modality="US", rows=512, cols=512, seed=500 + k, phi_items=5, nonphi_items=4
        )
        for k in range(n)
    ]
    stage = _stage(device, engine)
    stage.process_many(_items(cases[:1]))  # warm-up
    frames = [f for c in cases for f in _rgb_frames(c)]
    reader = engine._reader
    reader.readtext(frames[0])  # warm-up
    stage_s: list[float] = []
    naive_s: list[float] = []
    stage_cpu: list[float] = []
    naive_cpu: list[float] = []
    outcomes: list[Any] = []

    def run_stage() -> None:
        nonlocal outcomes
        items = _items(cases)
        t0, c0 = time.perf_counter(), time.process_time()
        outcomes = stage.process_many(items)
        stage_s.append(time.perf_counter() - t0)
        stage_cpu.append(time.process_time() - c0)

    def run_naive() -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        for f in frames:
            reader.readtext(f)
        naive_s.append(time.perf_counter() - t0)
        naive_cpu.append(time.process_time() - c0)

    for r in range(rounds):
        for step in (run_stage, run_naive) if r % 2 == 0 else (run_naive, run_stage):
            step()
    finder = TextFinder(engine)
    jobs = [FrameJob(0, f, luminance(f)) for f in frames]
    t0 = time.perf_counter()
    finder.find(jobs)
    find_s = time.perf_counter() - t0
    per_round_naive = sum(naive_s) / len(naive_s)
    return {
        "frames": len(frames),
        "rounds": rounds,
        "stage_s": [round(v, 2) for v in stage_s],
        "naive_s": [round(v, 2) for v in naive_s],
        "stage_fps": len(frames) * rounds / sum(stage_s),
        "naive_fps": len(frames) * rounds / sum(naive_s),
        "stage_vs_naive": sum(naive_s) / sum(stage_s),
        "stage_vs_naive_per_round": [round(a / b, 2) for a, b in zip(naive_s, stage_s, strict=True)],
        "stage_vs_naive_cpu_time": sum(naive_cpu) / sum(stage_cpu),
        "detect_recognize_fps": len(frames) / find_s,
        "detect_recognize_vs_naive": per_round_naive / find_s,
        "phi_redaction_recall": _redaction_recall(cases, outcomes),
    }


def bench_2k(engine: Any, device: str, n: int, tmp: Path) -> dict[str, Any]:
    cases = [
        synth.build(
            f"cr2k_{k}",
            tmp,
            modality="CR",
            rows=2560,
            cols=2048,
            seed=700 + k,
            text_height=(14, 48),
            phi_items=6,
            nonphi_items=4,
        )
        for k in range(n)
    ]
    stage = _stage(device, engine)
    items = _items(cases)
    t0 = time.perf_counter()
    outcomes = stage.process_many(items)
    stage_s = time.perf_counter() - t0
    reader = engine._reader
    naive_s = 0.0
    found_naive = found_stage = total = 0
    for c, o in zip(cases, outcomes, strict=True):
        frame = _rgb_frames(c)[0]
        t0 = time.perf_counter()
        result = reader.readtext(frame)
        naive_s += time.perf_counter() - t0
        nboxes = _naive_boxes(result)
        sboxes = [
            (x["box"][0], x["box"][1], x["box"][0] + x["box"][2], x["box"][1] + x["box"][3])
            for x in o.report.get("redacted", []) + o.report.get("kept", [])
        ]
        for r in c.regions:
            if r.kind == "label":
                continue
            total += 1
            found_naive += _covered(r, nboxes)
            found_stage += _covered(r, sboxes)
    return {
        "frames": n,
        "stage_s_per_frame": stage_s / n,
        "naive_s_per_frame": naive_s / n,
        "stage_vs_naive": naive_s / stage_s,
        "text_regions": total,
        "naive_detection_recall": found_naive / max(1, total),
        "stage_detection_recall": found_stage / max(1, total),
        "phi_redaction_recall": _redaction_recall(cases, outcomes),
    }


def bench_cine(engine: Any, device: str, frames: int, sample: int, tmp: Path) -> dict[str, Any]:
    case = synth.build(
        "cine",
        tmp,
        modality="US",
        rows=480,
        cols=640,
        frames=frames,
        seed=900,
        transient=True,
        encoding="native",
    )
    stage = _stage(device, engine)
    t0 = time.perf_counter()
    outcome = stage.process_many(_items([case]))[0]
    stage_s = time.perf_counter() - t0
    rgb = _rgb_frames(case)
    reader = engine._reader
    picks = np.linspace(0, frames - 1, num=min(sample, frames)).astype(int)
    t0 = time.perf_counter()
    for i in picks:
        reader.readtext(rgb[int(i)])
    per_frame = (time.perf_counter() - t0) / len(picks)
    naive_s = per_frame * frames
    rep = outcome.report
    return {
        "frames": frames,
        "stage_s": stage_s,
        "naive_s_estimated": naive_s,
        "naive_sampled_frames": len(picks),
        "stage_vs_per_frame": naive_s / stage_s,
        "frames_detected_whole": rep.get("frames_detected_whole"),
        "frames_detected_regions": rep.get("frames_detected_regions"),
        "verification": rep.get("verification"),
        "phi_redaction_recall": _redaction_recall([case], [outcome]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--n512", type=int, default=8, help="512x512 frames (default 8)")
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds at 512x512 (default 3)")
    ap.add_argument("--n2k", type=int, default=2, help="2048x2560 frames (default 2)")
    ap.add_argument("--cine", type=int, default=100, help="cine frames (default 100)")
    ap.add_argument("--naive-cine-sample", type=int, default=4, help="frames timed for per-frame OCR")
    ap.add_argument("--quick", action="store_true", help="4 / 1 / 30 frames")
    ap.add_argument("--skip", action="append", default=[], choices=["512", "2k", "cine"])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table for docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.n512, args.n2k, args.cine = 4, 1, 30

    import torch

    from privguard.pixels.ocr import cpu_threads, get_engine

    t0 = time.perf_counter()
    engine = get_engine(args.device)
    load_s = time.perf_counter() - t0
    meta = {
        "device": engine.device,
        "gpu": torch.cuda.get_device_name(0) if engine.device == "cuda" else None,
        "torch_threads": torch.get_num_threads() if engine.device == "cpu" else None,
        "cpu_threads_setting": cpu_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "model_load_s": round(load_s, 2),
    }
    results: dict[str, Any] = {"meta": meta}
    with tempfile.TemporaryDirectory(prefix="privguard-ocr-bench-") as tmp:
        root = Path(tmp)
        if "512" not in args.skip:
            results["512"] = bench_512(engine, engine.device, args.n512, root / "512", args.rounds)
            print("512x512:", json.dumps(results["512"], indent=1), flush=True)
        if "2k" not in args.skip:
            results["2k"] = bench_2k(engine, engine.device, args.n2k, root / "2k")
            print("2048x2560:", json.dumps(results["2k"], indent=1), flush=True)
        if "cine" not in args.skip:
            results["cine"] = bench_cine(
                engine, engine.device, args.cine, args.naive_cine_sample, root / "cine"
            )
            print("cine:", json.dumps(results["cine"], indent=1), flush=True)
    print(json.dumps(meta, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    if args.markdown:
        print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    lines = [
        f"Device: {m['device']}"
        + (f" ({m['gpu']})" if m.get("gpu") else f", {m['torch_threads']} torch threads"),
        "",
    ]
    lines += [
        "| workload | privguard | naive EasyOCR loop | ratio | recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    if "512" in results:
        r = results["512"]
        lines.append(
            f"| 512x512, {r['frames']} frames x {r['rounds']} alternated rounds, stage end to end | "
            f"{r['stage_fps']:.2f} frames/s | {r['naive_fps']:.2f} frames/s | {r['stage_vs_naive']:.2f}x "
            f"(rounds {r['stage_vs_naive_per_round']}; CPU time {r['stage_vs_naive_cpu_time']:.2f}x) | "
            f"PHI redacted {r['phi_redaction_recall']:.1%} |"
        )
        lines.append(
            f"| 512x512, detection + recognition only | {r['detect_recognize_fps']:.2f} frames/s | "
            f"{r['naive_fps']:.2f} frames/s | {r['detect_recognize_vs_naive']:.2f}x | |"
        )
    if "2k" in results:
        r = results["2k"]
        lines.append(
            f"| 2048x2560, {r['frames']} frames | {r['stage_s_per_frame']:.1f} s/frame | "
            f"{r['naive_s_per_frame']:.1f} s/frame | {r['stage_vs_naive']:.2f}x | "
            f"detected {r['stage_detection_recall']:.1%} vs {r['naive_detection_recall']:.1%}; "
            f"PHI redacted {r['phi_redaction_recall']:.1%} |"
        )
    if "cine" in results:
        r = results["cine"]
        lines.append(
            f"| cine 640x480, {r['frames']} frames | {r['stage_s']:.1f} s | {r['naive_s_estimated']:.1f} s "
            f"(from {r['naive_sampled_frames']} frames) | {r['stage_vs_per_frame']:.1f}x | "
            f"PHI redacted {r['phi_redaction_recall']:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
