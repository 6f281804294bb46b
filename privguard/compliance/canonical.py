"""Canonical JSON and SHA-256 fingerprints of validated models.

The canonical form of a model is ``json.dumps`` of its JSON-mode dump with
sorted keys, no insignificant whitespace and UTF-8 output. Two files that
validate to the same model (YAML or JSON, comments, key order) have the same
fingerprint; any change of meaning changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from privguard.header.profile import DeidProfile


def canonical_json(data: BaseModel | Any) -> bytes:
    """Return the canonical UTF-8 JSON bytes of a model or of JSON-compatible data."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def fingerprint(data: BaseModel | Any) -> str:
    """SHA-256 of the canonical JSON of a model or data."""
    return sha256_hex(canonical_json(data))


def profile_fingerprint(profile: DeidProfile) -> str:
    """SHA-256 of a de-identification profile.

    The profile keeps its options in a frozenset, whose order is not stable
    between processes, so they are sorted before hashing.
    """
    data = profile.model_dump(mode="json")
    data["options"] = sorted(data["options"])
    return fingerprint(data)
