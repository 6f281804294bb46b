"""privguard: de-identify medical images for sharing, and prove it.

The top level re-exports the main entry points; everything else lives in its
stage's module (``privguard.header``, ``privguard.pseudonym``, ``privguard.text``,
``privguard.pixels``, ``privguard.compliance``). Names are imported lazily so
that ``import privguard`` stays cheap.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from privguard._version import __version__
from privguard.errors import (
    AuditIntegrityError,
    ConfigError,
    ExportBlocked,
    InputError,
    KeyMaterialError,
    NotDicomError,
    OutputError,
    PolicyError,
    PrivguardError,
    PrivguardWarning,
    ProcessingError,
)

logging.getLogger("privguard").addHandler(logging.NullHandler())

_LAZY: dict[str, tuple[str, str]] = {
    "deidentify": ("privguard.deidentifier", "deidentify"),
    "deidentify_file": ("privguard.deidentifier", "deidentify_file"),
    "scrub": ("privguard.batch", "scrub"),
    "ScrubConfig": ("privguard.batch", "ScrubConfig"),
    "DeidRecord": ("privguard.models", "DeidRecord"),
    "FileResult": ("privguard.models", "FileResult"),
    "load_profile": ("privguard.header.profile", "load_profile"),
    "DeidProfile": ("privguard.header.profile", "DeidProfile"),
    "Option": ("privguard.header.profile", "Option"),
    "ProjectKey": ("privguard.pseudonym.keys", "ProjectKey"),
    "check": ("privguard.compliance", "check"),
}

__all__ = [
    "AuditIntegrityError",
    "ConfigError",
    "DeidProfile",
    "DeidRecord",
    "ExportBlocked",
    "FileResult",
    "InputError",
    "KeyMaterialError",
    "NotDicomError",
    "Option",
    "OutputError",
    "PolicyError",
    "PrivguardError",
    "PrivguardWarning",
    "ProcessingError",
    "ProjectKey",
    "ScrubConfig",
    "__version__",
    "check",
    "deidentify",
    "deidentify_file",
    "load_profile",
    "scrub",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'privguard' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from privguard.batch import ScrubConfig, scrub
    from privguard.compliance import check
    from privguard.deidentifier import deidentify, deidentify_file
    from privguard.header.profile import DeidProfile, Option, load_profile
    from privguard.models import DeidRecord, FileResult
    from privguard.pseudonym.keys import ProjectKey
