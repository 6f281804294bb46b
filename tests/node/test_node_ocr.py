"""The node with the burned-in text stage on (``ocr: auto``): an ultrasound image with rendered PHI
goes through the node and arrives redacted, with the pixel report in the audit log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from privguard.audit import iter_records
from privguard.pseudonym.keys import ProjectKey

from .support import NodeProcess, node_config, send, wait_for

PIXELS = Path(__file__).resolve().parent.parent / "pixels"
sys.path.insert(0, str(PIXELS))

from pxhelpers import needs_ocr  # noqa: E402

pytestmark = [needs_ocr, pytest.mark.ocr, pytest.mark.slow]


def test_burned_in_text_is_redacted_in_flight(tmp_path: Path, key_file: Path, key: ProjectKey) -> None:
    import scoring
    import synth

    from privguard.pixels.decode import load

    case = synth.build("us_rgb", tmp_path / "in", modality="US", rows=300, cols=400, seed=1)
    dest = tmp_path / "archive"
    cfg = node_config(tmp_path, key_file, {"type": "folder", "path": str(dest)}, workers=1, ocr="auto")
    cfg["device"] = "cpu"
    node = NodeProcess(tmp_path, cfg)
    node.start()
    try:
        assert send([case.path], node.port) == [0]
        wait_for(lambda: any(e["event"] in ("forwarded", "quarantined") for e in node.events()), 300, "OCR")
    finally:
        node.stop()
    [out] = list(dest.rglob("*.dcm"))
    truths = [
        scoring.Truth(g.text, g.phi, g.kind, g.left, g.top, g.width, g.height, g.frames, g.mask)
        for g in case.regions
    ]
    result = scoring.score(case.name, load(case.path).frames, load(out).frames, truths)
    phi = [r for r in result.regions if r.phi]
    assert phi and all(r.ok for r in phi), "PHI text is still readable in the forwarded image"
    [record] = [r for r in iter_records(Path(cfg["audit_log"])) if r["type"] == "file"]
    assert record["status"] == "ok" and record["pixels"]["boxes_redacted"] > 0
    blob = out.read_bytes()
    ident = case.identity
    for token in (ident.family, ident.given, ident.patient_id, ident.accession, ident.institution):
        assert token.encode() not in blob, "header PHI reached the archive"
