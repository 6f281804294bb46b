"""The EasyOCR engine itself: offline weights, one model per process, detection and recognition."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pxhelpers import needs_ocr

from privguard.errors import ConfigError, OCRUnavailableError
from privguard.pixels import ocr

pytestmark = [needs_ocr, pytest.mark.ocr]


@pytest.fixture(scope="module")
def engine() -> ocr.OCREngine:
    """The process-wide EasyOCR engine on CPU."""
    return ocr.get_engine("cpu")


def rendered(text: str) -> np.ndarray:
    img = np.zeros((64, 320, 3), dtype=np.uint8)
    cv2.putText(img, text, (8, 42), cv2.FONT_HERSHEY_DUPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def test_model_is_loaded_once_per_process(engine: ocr.OCREngine) -> None:
    assert ocr.get_engine("cpu") is engine
    assert engine.name == "easyocr" and engine.device == "cpu"


def test_detect_and_recognize(engine: ocr.OCREngine) -> None:
    img = rendered("PORTABLE 2020")
    det = engine.detect([img, np.zeros((32, 32, 3), dtype=np.uint8)])
    assert det[0].boxes and det[1].boxes == []
    assert det[0].score is not None and det[0].score.shape == img.shape[:2]
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    reading = engine.recognize([gray[10:55, 0:300]])[0]
    assert "PORTABLE" in reading.text.upper() and reading.confidence > 0.5


def test_text_finder_reads_words(engine: ocr.OCREngine) -> None:
    from privguard.pixels.textfind import FrameJob, TextFinder

    img = rendered("DOE   JOHN")
    lines = TextFinder(engine).find([FrameJob(0, img, cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))])[0]
    words = [w.text.upper() for ln in lines for w in ln.words]
    assert "DOE" in words and "JOHN" in words


def test_missing_engine_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "find_spec", lambda name: None)
    with pytest.raises(OCRUnavailableError) as info:
        ocr.model_dir()
    assert "privguard[ocr]" in str(info.value) and "--ocr off" in str(info.value)


def test_device_resolution() -> None:
    import torch

    assert ocr.resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError):
        ocr.resolve_device("tpu")
    if not torch.cuda.is_available():
        assert ocr.resolve_device("auto") == "cpu"
        with pytest.raises(ConfigError):
            ocr.resolve_device("cuda")


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVGUARD_OCR_THREADS", "3")
    assert ocr.cpu_threads() == 3
    monkeypatch.setenv("PRIVGUARD_OCR_THREADS", "x")
    assert ocr.cpu_threads() >= 1
