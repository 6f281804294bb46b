"""Box geometry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from privguard.pixels.boxes import Box, bounding, merge_boxes


def test_basic_geometry() -> None:
    b = Box.from_xywh(10, 20, 30, 40)
    assert (b.x0, b.y0, b.x1, b.y1) == (10, 20, 40, 60)
    assert (b.width, b.height, b.area) == (30, 40, 1200)
    assert b.as_list() == [10, 20, 30, 40]
    assert b.pad(5).as_list() == [5, 15, 40, 50]
    assert Box(-5, -5, 500, 500).clip(100, 50) == Box(0, 0, 100, 50)
    assert Box(0, 0, 10, 10).overlap(Box(5, 5, 20, 20)) == 25
    assert Box(0, 0, 10, 10).gap(Box(15, 0, 20, 10)) == (5, 0)
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 30, 30)) == 0.0
    assert Box(0, 0, 10, 10).scale(0.5) == Box(0, 0, 5, 5)
    assert Box(0, 0, 10, 10).vertical_overlap(Box(30, 5, 40, 15)) == 0.5


def test_merge_and_bounding() -> None:
    boxes = [Box(0, 0, 10, 10), Box(12, 0, 20, 10), Box(100, 100, 110, 110)]
    assert merge_boxes(boxes, gap=2) == [Box(0, 0, 20, 10), Box(100, 100, 110, 110)]
    assert merge_boxes(boxes, gap=1) == sorted(boxes)
    assert bounding(boxes) == Box(0, 0, 110, 110)
    assert bounding([]) is None


coords = st.integers(min_value=0, max_value=200)


@given(st.lists(st.tuples(coords, coords, st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=12))
def test_merge_covers_every_input(raw: list[tuple[int, int, int, int]]) -> None:
    boxes = [Box.from_xywh(*r) for r in raw]
    merged = merge_boxes(boxes, gap=3)
    for b in boxes:
        assert any(m.contains(b) for m in merged)
    for i, a in enumerate(merged):
        for c in merged[i + 1 :]:
            gx, gy = a.gap(c)
            assert gx > 3 or gy > 3
