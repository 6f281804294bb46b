"""Multi-frame planning: the static overlay is read once, transient text is still looked at."""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.cine import plan, presence


def frames(n: int = 20, transient: range = range(8, 12)) -> np.ndarray:
    rng = np.random.default_rng(3)
    out = np.zeros((n, 200, 320), dtype=np.uint8)
    for i in range(n):
        f = out[i]
        # moving "anatomy": speckle that changes every frame in the middle
        f[60:180, 60:260] = rng.integers(0, 160, size=(120, 200))
        cv2.putText(f, "DOE JOHN 2020-01-02", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1)
        if i in transient:
            cv2.putText(f, "MARKED 12", (200, 195), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    return out


def test_static_overlay_costs_one_full_pass_and_transient_text_gets_regions() -> None:
    p = plan(frames(), rescan_every=0)
    assert p.full == [0]
    assert 8 in p.cores  # the text appeared in frame 8
    assert 12 in p.cores  # and disappeared in frame 12
    assert not any(f in p.cores for f in (3, 5, 15))  # nothing new there in the overlay area
    regions = p.regions(8)
    assert any(r.contains(Box(205, 185, 260, 196)) for r in regions)
    # a region already explained by known text is not detected again
    assert p.regions(8, covered=[Box(150, 150, 320, 200)]) == []


def test_rescans_and_short_sequences() -> None:
    p = plan(frames(60, range(0)), rescan_every=25)
    assert p.full == [0] and p.rescans == [25, 50]
    assert p.rescan_box is not None and p.rescan_box.contains(Box(60, 60, 260, 180))
    assert plan(frames(2, range(0))).full == [0, 1]


def test_presence_follows_the_text_pixels() -> None:
    f = frames()
    static = presence(f, 0, Box(5, 8, 180, 24), True)
    assert (static > 0.95).all()
    transient = presence(f, 9, Box(198, 183, 290, 198), True)
    assert (transient[8:12] > 0.95).all()
    assert (transient[:8] < 0.6).all() and (transient[12:] < 0.6).all()
