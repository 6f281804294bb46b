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


def test_cpu_inference_copies_compute_what_easyocr_computes(engine: ocr.OCREngine) -> None:
    """The CPU engine runs copies of CRAFT and the recognizer with batch norm folded into the
    convolutions and channels-last weights: the same fp32 function (depends on model numerics:
    outputs may differ from EasyOCR's modules only by float rounding), and the reader's own
    modules (what a plain ``readtext`` runs) stay as EasyOCR built them."""
    import torch

    assert isinstance(engine, ocr.EasyOCREngine)
    reader = engine._reader
    plain_det, fast_det = reader.detector, engine._detector
    assert fast_det is not plain_det
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain_det.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast_det.modules())
    img = torch.from_numpy(rendered("DOB 11.03.2008").astype(np.float32) / 255.0 - 0.5)
    x = img.permute(2, 0, 1).unsqueeze(0).contiguous()
    with torch.inference_mode():
        y_plain, _ = plain_det(x)
        y_fast, _ = fast_det(x.contiguous(memory_format=torch.channels_last))
    assert float((y_plain - y_fast).abs().max()) < 1e-4
    crop = torch.rand(2, 1, 64, 200) - 0.5
    text = torch.zeros(2, 21, dtype=torch.long)
    reader.recognizer.eval()  # as easyocr.recognition.recognizer_predict sets it
    with torch.inference_mode():
        r_plain = reader.recognizer(crop, text)
        r_fast = engine._recognizer(crop, text)
    assert float((r_plain - r_fast).abs().max()) < 1e-3


def test_cpu_recognition_spreads_batches_without_changing_readings(
    engine: ocr.OCREngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On CPU each recognizer batch runs on one torch thread and the batches are spread over
    ``PRIVGUARD_OCR_THREADS`` Python threads: the readings are the same for 1 and 3 workers
    (each batch is computed alone, on one thread, either way), and torch's thread setting is
    restored afterwards."""
    import torch

    words = ["PORTABLE", "KOWALSKI", "11.03.2008", "C5-1", "TIS 0.4", "RT KIDNEY", "AP", "12 cm"]
    crops = []
    for k, w in enumerate(words):
        img = np.zeros((40, 40 + 22 * len(w)), dtype=np.uint8)
        cv2.putText(img, w, (6, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8 + 0.05 * k, 255, 2, cv2.LINE_AA)
        crops.append(img)
    before = torch.get_num_threads()
    monkeypatch.setenv("PRIVGUARD_OCR_THREADS", "1")
    one = engine.recognize(crops)
    monkeypatch.setenv("PRIVGUARD_OCR_THREADS", "3")
    three = engine.recognize(crops)
    assert torch.get_num_threads() == before
    assert one == three
    assert sum(r.confidence > 0.5 for r in one) >= 6


def test_whole_frame_jobs_keep_the_score_map(engine: ocr.OCREngine) -> None:
    """A frame detected whole at full resolution keeps CRAFT's character score map (verification
    looks there for what a stroke by a mask was before masking); a region job does not."""
    from privguard.pixels.boxes import Box
    from privguard.pixels.textfind import FrameJob, TextFinder

    img = rendered("DOE   JOHN")
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    whole = FrameJob(0, img, gray)
    region = FrameJob(0, img, gray, regions=[Box(0, 0, 160, 64)])
    TextFinder(engine).find([whole, region])
    assert whole.score is not None and whole.score.shape == gray.shape
    letters = gray > 128
    assert float(whole.score[letters].max()) > 0.5 and float(whole.score[:, 300:].max()) < 0.1
    assert region.score is None
