"""Tampering: any byte of the request or the approval changed is rejected.

The request is written as JSON (every byte is significant in JSON: a flip
breaks the syntax, a key, or changes a value) and every byte is flipped; the
approval file is checked byte-for-byte against its canonical form, so every
byte of it is flipped too. A changed file must either fail to load or fail
verification: never verify.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privguard.compliance import Approval, ExportRequest, SigningKey, sign_approval, verify_approval
from privguard.compliance.approval import approval_from_bytes
from privguard.errors import AuditIntegrityError, PolicyError
from privguard.policyio import parse_text, validate

from .support import NOW, decide, example

KEY = SigningKey.generate()
AT = NOW + dt.timedelta(days=1)


def _setup() -> tuple[bytes, ExportRequest, Approval]:
    request, consents = example("gdpr")
    raw = (json.dumps(request, indent=2, default=str) + "\n").encode()
    model = _request_from(raw)
    approval = sign_approval(
        model, decide(request, consents), KEY, expires_at=NOW + dt.timedelta(days=30), officer="DPO", now=NOW
    )
    return raw, model, approval


def _request_from(raw: bytes) -> ExportRequest:
    """What load_request does after reading the file."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("not UTF-8") from None
    return validate(ExportRequest, parse_text(text, "json", "export request", "t"), "export request", "t")


RAW, REQUEST, APPROVAL = _setup()
APPROVAL_BYTES = APPROVAL.to_bytes()


def _rejected_request(raw: bytes) -> bool:
    try:
        model = _request_from(raw)
    except PolicyError:
        return True
    try:
        verify_approval(model, APPROVAL, KEY.public_key, now=AT)
    except AuditIntegrityError:
        return True
    return False


def _rejected_approval(raw: bytes) -> bool:
    try:
        verify_approval(REQUEST, approval_from_bytes(raw), KEY.public_key, now=AT)
    except AuditIntegrityError:
        return True
    return False


def test_untouched_files_verify() -> None:
    assert verify_approval(_request_from(RAW), approval_from_bytes(APPROVAL_BYTES), KEY.public_key, now=AT)


def _flip(raw: bytes, i: int, mask: int) -> bytes:
    return raw[:i] + bytes([raw[i] ^ mask]) + raw[i + 1 :]


@pytest.mark.parametrize("mask", [0x01, 0x20])
def test_every_byte_of_the_request_flipped_is_rejected(mask: int) -> None:
    accepted = [i for i in range(len(RAW)) if not _rejected_request(_flip(RAW, i, mask))]
    assert accepted == []


def test_sampled_request_bytes_with_other_masks_are_rejected() -> None:
    rng = random.Random(20260301)
    for _ in range(600):
        i, mask = rng.randrange(len(RAW)), rng.choice([0x02, 0x04, 0x08, 0x10, 0x40, 0x80, 0xFF])
        assert _rejected_request(_flip(RAW, i, mask)), (i, mask)


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_every_byte_of_the_approval_flipped_is_rejected(mask: int) -> None:
    accepted = [
        i for i in range(len(APPROVAL_BYTES)) if not _rejected_approval(_flip(APPROVAL_BYTES, i, mask))
    ]
    assert accepted == []


def test_approval_bytes_inserted_or_removed_are_rejected() -> None:
    assert _rejected_approval(APPROVAL_BYTES + b"\n")
    assert _rejected_approval(APPROVAL_BYTES[:-1])
    assert _rejected_approval(APPROVAL_BYTES.replace(b"\n", b"\r\n", 1))
    assert _rejected_approval(json.dumps(json.loads(APPROVAL_BYTES)).encode())  # same JSON, other layout


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), min_size=1, max_size=6
    )
)
def test_random_edits_of_the_approval_are_rejected(edits: list[tuple[int, int]]) -> None:
    raw = bytearray(APPROVAL_BYTES)
    for pos, mask in edits:
        raw[pos % len(raw)] ^= mask
    if bytes(raw) != APPROVAL_BYTES:
        assert _rejected_approval(bytes(raw))
