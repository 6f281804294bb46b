"""Up-front advice for ``privguard scrub``: OCR on CPU for many files takes a while.

The header path handles thousands of files per second; the burned-in text stage costs
about a second or two per image that needs OCR on a CPU (EasyOCR's CRAFT detector on a
512 x 512 frame; images without text-like strokes are dropped by the pixel screen in a few
milliseconds). Which files need OCR is only known once their headers are read, so the
warning states the worst case for the number of input files found.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

#: Warn when at least this many input files may go through OCR on CPU.
MANY_FILES = 200
#: Seconds per image that needs OCR on CPU (512 x 512, two cores; docs/benchmarks.md).
CPU_SECONDS_PER_IMAGE = 1.7
_COUNT_LIMIT = 1_000_000


def count_files(inputs: list[Path], limit: int = _COUNT_LIMIT) -> int:
    """Regular files under ``inputs`` (paths only; stops counting at ``limit``)."""
    n = 0
    for p in inputs:
        if p.is_file():
            n += 1
        elif p.is_dir():
            for _root, _dirs, files in os.walk(p):
                n += len(files)
                if n >= limit:
                    return n
    return n


def ocr_runs_on_cpu(device: str) -> bool:
    """True when the OCR engine would run on the CPU for ``--device`` (auto: no CUDA)."""
    if device == "cpu":
        return True
    if device == "cuda" or find_spec("torch") is None:
        return False
    import torch

    return not bool(torch.cuda.is_available())


def cpu_ocr_warning(inputs: list[Path], device: str, workers: int | None = None) -> str | None:
    """A one-line warning when OCR may run on CPU for many files, with the expected time, or None."""
    if device == "cuda":
        return None
    n = count_files(inputs)
    if n < MANY_FILES or not ocr_runs_on_cpu(device):
        return None
    cores = max(1, workers or os.cpu_count() or 1)
    worst = n * CPU_SECONDS_PER_IMAGE / max(1, cores // 2)
    return (
        f"burned-in text OCR runs on the CPU: {n:,} input files; each image that needs OCR "
        f"(ultrasound, screen captures, radiographs, SECONDARY/DERIVED images with text-like strokes) "
        f"costs about {CPU_SECONDS_PER_IMAGE:.1f} s, up to about {worst / 60:,.0f} min if all do "
        "(--device cuda or --ocr off avoid it)"
    )
