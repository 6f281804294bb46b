"""An export with burned-in text: real EasyOCR redacts the name, the review page shows it filled."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pydicom
import pytest

from privguard.audit import verify
from privguard.audit.verify import iter_records
from privguard.export import export
from privguard.pseudonym.keys import ProjectKey

from .support import approved_setup

HAVE_OCR = find_spec("easyocr") is not None and find_spec("easyocr_en_models") is not None
pytestmark = [
    pytest.mark.skipif(not HAVE_OCR, reason="EasyOCR and its offline weights are not installed"),
    pytest.mark.ocr,
    pytest.mark.slow,
]


def _burn(path: Path, text: str) -> None:
    import cv2

    ds = pydicom.dcmread(path)
    canvas = np.zeros((256, 256), np.uint8)
    cv2.putText(canvas, text, (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2)
    img = (np.arange(256, dtype=np.uint16)[np.newaxis, :] * 4 + 200).repeat(256, axis=0)  # a gradient
    img[canvas > 0] = 3000
    ds.Rows = ds.Columns = 256
    ds.PixelData = img.astype(np.uint16).tobytes()
    ds.save_as(path)


def test_burned_in_name_is_redacted_and_reviewed(tmp_path: Path, key: ProjectKey) -> None:
    s = approved_setup(tmp_path, key)
    victim = s.inputs[0] / "Zwiebelmann" / "DE-S001-0.dcm"
    _burn(victim, "ZWIEBELMANN ERIKA")
    out = tmp_path / "out"
    # inline: in this process (the OCR model loads once); workers are covered by the other tests
    result = export(
        s.request, s.approval, s.officer_pub, s.key_file, s.inputs, out, consents=s.consents,
        ocr="on", device="cpu", workers=1, executor="inline", audit_log=tmp_path / "audit.jsonl",
    )  # fmt: skip
    assert result.summary.failed == 0 and result.images == 1
    recs = [r for r in iter_records(tmp_path / "audit.jsonl") if r["type"] == "file" and r.get("pixels")]
    redacted = [r for r in recs if r["pixels"].get("boxes_redacted")]
    assert len(redacted) == 1 and redacted[0]["pixels"]["verification"] == "passed"
    outp = pydicom.dcmread(out / redacted[0]["output"])
    assert int(outp.pixel_array[14:34, 8:200].max()) < 3000  # the name's pixels are gone
    assert outp.BurnedInAnnotation == "NO"
    assert verify(tmp_path / "audit.jsonl").ok
    page = (out / "review" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "Redacted images (1)" in page
    needles = [t.encode() for t in s.tokens.values()] + [str(tmp_path).encode()]
    for path in [
        *(p for p in out.rglob("*") if p.is_file() and ".privguard" not in p.parts),
        tmp_path / "audit.jsonl",
    ]:
        data = path.read_bytes()
        assert not [n for n in needles if n in data], path.name
