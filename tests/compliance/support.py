"""Shared helpers for the compliance tests: the example files as dicts, edits, and one-call checks."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from privguard.compliance import ConsentSet, Decision, ExportRequest, check
from privguard.compliance.loader import load_policies
from privguard.header.profile import DeidProfile, load_profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "compliance"
DATA = Path(__file__).resolve().parent / "data"

#: Evaluation time of every scenario (examples are dated early 2026).
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

EXAMPLE_FILES: dict[str, tuple[str, str | None]] = {
    "gdpr": ("gdpr-research-request.yaml", "gdpr-research-consents.yaml"),
    "hipaa": ("hipaa-safe-harbor-request.yaml", None),
    "pipl": ("pipl-cross-border-request.yaml", "pipl-cross-border-consents.yaml"),
}

Edit = Callable[[dict[str, Any], dict[str, Any] | None], None]


def read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def example(name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Deep copies of an example request and its consent file, as dicts."""
    req_file, cons_file = EXAMPLE_FILES[name]
    req = read_yaml(EXAMPLES / req_file)
    cons = read_yaml(EXAMPLES / cons_file) if cons_file else None
    return copy.deepcopy(req), copy.deepcopy(cons)


def get(d: Any, path: str) -> Any:
    for part in path.split("."):
        d = d[int(part)] if isinstance(d, list) else d[part]
    return d


def put(d: Any, path: str, value: Any) -> None:
    *head, last = path.split(".")
    parent = get(d, ".".join(head)) if head else d
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value


def drop(d: Any, path: str) -> None:
    *head, last = path.split(".")
    parent = get(d, ".".join(head)) if head else d
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]


def record(consents: dict[str, Any] | None, patient: str) -> dict[str, Any]:
    """The consent record of ``patient`` in a consent dict."""
    assert consents is not None
    return next(r for r in consents["records"] if r["patient"] == patient)


def patient(request: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in request["dataset"]["patients"] if p["id"] == pid)


def profile_from(base: str, **changes: Any) -> DeidProfile:
    """A shipped profile with top-level fields changed (``options`` replaces the list)."""
    data = load_profile(base).model_dump(mode="json")
    data["options"] = sorted(data["options"])
    for key, value in changes.items():
        if key == "add_options":
            data["options"] = sorted(set(data["options"]) | set(value))
        elif key == "ocr":
            data["pixels"]["ocr"] = value
        elif key == "method":
            data["pseudonyms"]["method"] = value
        else:
            data[key] = value
    return DeidProfile.model_validate(data)


def decide(
    request: dict[str, Any],
    consents: dict[str, Any] | None = None,
    *,
    policies: list[str | Path] | None = None,
    profile: DeidProfile | None = None,
    now: dt.datetime = NOW,
) -> Decision:
    """Validate dicts and run the check."""
    req = ExportRequest.model_validate(request)
    cons = ConsentSet.model_validate(consents) if consents is not None else None
    pset = load_policies(policies or [], req)
    return check(req, cons, pset, now=now, base_dir=EXAMPLES, profile=profile)
