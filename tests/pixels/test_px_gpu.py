"""CUDA tests (run with `make test-gpu` on a machine with a GPU)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import synth
from pxhelpers import HAVE_OCR


def _have_cuda() -> bool:
    if not HAVE_OCR:
        return False
    import torch

    return bool(torch.cuda.is_available())


# `make test` deselects these (-m "not gpu"); `make test-gpu` runs them where CUDA exists.
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _have_cuda(), reason="needs EasyOCR and a CUDA device")]


@pytest.fixture(scope="module")
def cuda_engine():  # type: ignore[no-untyped-def]
    from privguard.pixels.ocr import get_engine

    return get_engine("cuda")


def test_batched_detection_matches_one_by_one(cuda_engine) -> None:  # type: ignore[no-untyped-def]
    import cv2

    imgs = []
    for k in range(8):
        img = np.zeros((512, 512, 3), dtype=np.uint8)
        cv2.putText(
            img,
            f"PATIENT {k} 2020-01-0{k}",
            (20, 60 + 40 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8,
            (255, 255, 255),
            2,
        )
        imgs.append(img)
    batched = cuda_engine.detect(imgs)
    single = [cuda_engine.detect([im])[0] for im in imgs]
    for a, b in zip(batched, single, strict=True):
        assert len(a.boxes) == len(b.boxes)
        for x, y in zip(sorted(a.boxes), sorted(b.boxes), strict=True):
            assert x.iou(y) > 0.8


def test_stage_throughput_on_512_frames(cuda_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from privguard.dicomio import read_source
    from privguard.pixels.allowlist import load_allowlist
    from privguard.pixels.stage import OCRPixelStage
    from privguard.text.context import PhiContext

    cases = [synth.build(f"f{k}", tmp_path, modality="US", rows=512, cols=512, seed=k) for k in range(64)]
    stage = OCRPixelStage(ocr="on", device="cuda", allowlist=load_allowlist(), engine=cuda_engine)
    items = [(s, PhiContext.from_dataset(s.ds)) for s in (read_source(c.path) for c in cases)]
    stage.process_many(items[:4])  # warm-up (cudnn autotuning)
    t0 = time.perf_counter()
    outs = stage.process_many(items)
    fps = len(items) / (time.perf_counter() - t0)
    assert all(o.failed is None for o in outs)
    assert fps >= 30, f"{fps:.1f} frames/s"
