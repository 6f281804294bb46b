"""The review page: self-contained, in a real headless Chromium (Debian's), images decoded, counts right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from privguard.audit import MANIFEST
from privguard.audit.chain import canonical
from privguard.pseudonym.keys import ProjectKey
from privguard.review import build_page

from .support import Setup, approved_setup

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _redacted_pair(tmp: Path) -> tuple[Path, Path]:
    """An input with a bright 'text' block and its output with the block blacked out."""
    from study_gen import ct_instance

    ds = ct_instance(
        ("Zwiebelmann^Erika", "DE-P001", "19590301"), "1.2.3", "1.2.3.1", "1.2.3.2", "1.2.3.3", 1, []
    )
    ds.Rows = ds.Columns = 128
    img = np.full((128, 128), 200, np.uint16)
    img[20:36, 10:90] = 4000  # where the burned-in name would be
    ds.PixelData = img.tobytes()
    before, after = tmp / "in.dcm", tmp / "out.dcm"
    ds.save_as(before, enforce_file_format=True)
    img[20:36, 10:90] = 0
    ds.PixelData = img.tobytes()
    ds.save_as(after, enforce_file_format=True)
    return before, after


def _export_with_image(s: Setup) -> Path:
    from privguard.export import export
    from privguard.review.images import render_pair

    out = s.tmp / "out"
    export(s.request, s.approval, s.officer_pub, s.key_file, s.inputs, out, consents=s.consents, ocr="off",
           workers=1, audit_log=s.tmp / "audit.jsonl")  # fmt: skip
    pair = render_pair(*_redacted_pair(s.tmp))
    assert pair is not None and pair[2] == 1
    (out / "review" / "images").mkdir(parents=True, exist_ok=True)
    (out / "review" / "images" / "x-before.png").write_bytes(pair[0])
    (out / "review" / "images" / "x-after.png").write_bytes(pair[1])
    data = json.loads((out / "review" / "export.json").read_bytes())
    data["images"] = [
        {"output": "P/S/R/x.dcm", "boxes": 1, "before": "images/x-before.png", "after": "images/x-after.png"}
    ]
    (out / "review" / "export.json").write_bytes(canonical(data) + b"\n")
    build_page(out)
    return out


def test_before_picture_has_the_redacted_region_filled(tmp_path: Path) -> None:
    import cv2

    from privguard.review.images import render_pair

    pair = render_pair(*_redacted_pair(tmp_path))
    assert pair is not None
    before = cv2.imdecode(np.frombuffer(pair[0], np.uint8), cv2.IMREAD_COLOR)
    inside = before[24:32, 20:80]  # well inside the block, away from the outline
    assert int(inside.max()) == 0, "the 'before' picture shows the redacted pixels"
    assert pydicom.dcmread(tmp_path / "in.dcm").pixel_array[24:32, 20:80].min() == 4000


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_review_page_in_headless_chromium(tmp_path: Path, key: ProjectKey) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    out = _export_with_image(approved_setup(tmp_path, key))
    page_file = out / "review" / "index.html"
    manifest_files = len((out / MANIFEST).read_text().splitlines())
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert errors == []
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
            assert page.inner_text("#count-manifest").strip() == str(manifest_files)
            assert page.locator("tr.file").count() == manifest_files
            assert page.inner_text("#outcome").strip() == "success"
            widths = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) == 2 and all(w > 0 for w in widths), widths
            if (
                Path(__file__).resolve().parents[2] / "docs"
            ).is_dir() and False:  # screenshots: tools/, not tests
                pass
        finally:
            browser.close()
