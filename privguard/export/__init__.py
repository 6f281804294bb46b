"""Governed exports: an approved request, bound to the files, scrubbed, recorded, reviewed.

::

    from privguard.export import export
    result = export("request.yaml", "approval.json", "officer.pub", "project.key",
                    ["/pacs/export"], "/share/out", consents="consents.yaml")
    result.summary.ok, result.head.hash, result.review

:func:`~privguard.export.draft.draft_request` drafts a request's dataset
section from the files' headers. See :mod:`privguard.export.workflow` and
docs/audit.md.
"""

from __future__ import annotations

from privguard.export.bind import CONTRADICTIONS, Bound, bind
from privguard.export.draft import draft_request
from privguard.export.workflow import ExportRefused, ExportResult, export

__all__ = ["CONTRADICTIONS", "Bound", "ExportRefused", "ExportResult", "bind", "draft_request", "export"]
