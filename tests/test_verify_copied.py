"""The verifier's re-scan skips only elements proven to be copies of scanned input elements."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import pydicom_test_files

from privguard.deidentifier import Deidentifier, _write
from privguard.dicom.scan import scan
from privguard.dicom.verify import Copied, Forbidden, _known, verify_output
from privguard.dicomio import read_source
from privguard.errors import OutputError
from privguard.pseudonym.keys import ProjectKey


def _output(path: Path) -> tuple[bytes, Copied]:
    key = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))
    deid = Deidentifier("basic", key)
    src = read_source(path)
    st, _ = deid.process(src)
    buf = io.BytesIO()
    copies: list[tuple[int, int, int]] = []
    _write(src, st, buf, None, deid.engine.method_bytes(src.implicit, src.little), copies)
    assert src.scan is not None
    return buf.getvalue(), Copied(src.scan, src.header, copies)


def _ct() -> Path:
    return next(p for p in pydicom_test_files() if p.name == "CT_small.dcm")


def test_copied_elements_are_known_and_the_scan_agrees() -> None:
    data, copied = _output(_ct())
    known = _known(data, copied)
    assert known is not None and known.elements
    full, fast = scan(data, require_part10=True), scan(data, require_part10=True, known=known)
    assert [(e.tag, e.start, e.end) for e in fast.elements] == [
        (e.tag, e.start, e.end) for e in full.elements
    ]
    verify_output(data, Forbidden(()), copied)


def test_a_copied_range_that_differs_from_the_input_is_walked_again() -> None:
    data, copied = _output(_ct())
    out_pos, _, n = copied.runs[0]
    bad = bytearray(data)
    bad[out_pos + n - 1] ^= 0xFF  # the copy no longer matches the input
    known = _known(bytes(bad), copied)
    assert known is not None
    assert all(not (out_pos <= p < out_pos + n) for p in known.elements)


def test_known_elements_still_go_through_the_order_check() -> None:
    data, copied = _output(_ct())
    known = _known(data, copied)
    assert known is not None
    # Swap the tags the index claims for two known elements: the claimed order breaks.
    (p1, (t1, v1, n1)), (p2, (t2, v2, n2)) = sorted(known.elements.items())[:2]
    swapped = dict(known.elements)
    swapped[p1], swapped[p2] = (t2, v1, n1), (t1, v2, n2)
    with pytest.raises(Exception, match="out of order"):
        scan(data, require_part10=True, known=type(known)(known.transfer_syntax, swapped))


def test_a_bad_emitted_element_is_still_refused() -> None:
    data, copied = _output(_ct())
    known = _known(data, copied)
    assert known is not None
    # Find an emitted (not copied) top-level element and give it an odd length.
    full = scan(data, require_part10=True)
    emitted = [
        e for e in full.elements if full.meta_end + e.start not in known.elements and e.tag != 0x7FE00010
    ]
    assert emitted
    e = emitted[0]
    pos = full.meta_end + e.start
    bad = bytearray(data)
    vr = bytes(bad[pos + 4 : pos + 6])
    assert vr not in (b"OB", b"OW", b"SQ", b"UN", b"UT")  # a short-form text element
    (length,) = struct.unpack_from("<H", bad, pos + 6)
    struct.pack_into("<H", bad, pos + 6, length + 1)
    with pytest.raises(OutputError, match="does not parse cleanly"):
        verify_output(bytes(bad), Forbidden(()), copied)
