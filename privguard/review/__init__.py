"""The review page of an export: ``OUT/review/index.html``, one self-contained file.

For the officer who signs off: the request, the decision and its findings
with citations, the counts, excluded patients by pseudonym and reason, each
file's status, the manifest hash, the audit chain head, and a before/after
pair for every image whose pixels were redacted (the 'before' with the boxes
filled: never readable PHI). Rendered with Jinja2 (autoescaping on) from
``OUT/review/export.json``, which the export writes; images are inlined as
``data:`` URIs, so the page loads nothing from anywhere.
``privguard review OUT`` rebuilds it.
"""

from __future__ import annotations

from privguard.review.render import REVIEW_DIR, build_page, load_review

__all__ = ["REVIEW_DIR", "build_page", "load_review"]
