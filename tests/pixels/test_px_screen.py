"""The pixel screen in front of the detector: every frame with text passes, text-free frames drop.

No OCR here: the screen is classical (OpenCV top-hats and connected components), so these tests
do not depend on model numerics.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import synth
import test_px_synthetic as px
from pxhelpers import PSEUDO_PHI

from privguard.pixels.decode import load
from privguard.pixels.render import render
from privguard.pixels.screen import screen


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, np.ndarray, list[bool]]]:
    """(name, 8-bit frames, has-text per frame) of a varied seeded set."""
    root = tmp_path_factory.mktemp("screen")
    specs = px.FAST + px.random_specs(8, seed=21) + px.second_pass_specs(8, seed=22)
    out = []
    for k, s in enumerate(specs):
        spec = dict(s)
        spec["name"] = f"s{k}_{spec['name']}"
        c = synth.build(out_dir=root, **spec)  # type: ignore[arg-type]
        gray = render(load(c.path)).gray
        has = [any(f in g.frames for g in c.regions) for f in range(gray.shape[0])]
        out.append((c.name, gray, has))
    return out


def test_every_frame_with_text_passes(generated: list[tuple[str, np.ndarray, list[bool]]]) -> None:
    missed = [
        (name, f)
        for name, gray, has in generated
        for f in range(gray.shape[0])
        if has[f] and not screen(gray[f]).may_hold_text
    ]
    assert sum(sum(h) for _, _, h in generated) >= 40
    assert not missed


def test_pseudo_phi_files_pass() -> None:
    files = [p for p in sorted(PSEUDO_PHI.glob("*.dcm")) if "no_pixels" not in p.name]
    assert files
    for p in files:
        gray = render(load(p)).gray
        assert screen(gray[0]).may_hold_text, p.name


def test_text_free_frames_are_dropped(tmp_path: Path) -> None:
    flat = np.full((512, 512), 40, dtype=np.uint8)
    assert not screen(flat).may_hold_text
    noise = np.clip(np.random.default_rng(0).normal(100, 3, (512, 512)), 0, 255).astype(np.uint8)
    assert not screen(noise).may_hold_text
    ct = synth.build("ct_blank", tmp_path, modality="CT", rows=512, cols=512, seed=3, no_text=True)
    assert not screen(render(load(ct.path)).gray[0]).may_hold_text


def test_screen_is_cheap() -> None:
    rng = np.random.default_rng(1)
    frame = np.clip(rng.normal(90, 25, (512, 512)), 0, 255).astype(np.uint8)
    screen(frame)
    t0 = time.perf_counter()
    for _ in range(10):
        screen(frame)
    per_frame = (time.perf_counter() - t0) / 10
    assert per_frame < 0.1  # a few ms on a free core; generous for a loaded CI machine
