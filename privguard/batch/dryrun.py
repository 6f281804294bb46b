"""``dry_run()``: what a scrub would do, per file and per attribute, writing nothing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from privguard.batch.config import ScrubConfig
from privguard.batch.paths import check_paths, walk_inputs
from privguard.batch.run import load_key
from privguard.deidentifier import Deidentifier
from privguard.dicomio import read_source, sniff
from privguard.errors import PrivguardError
from privguard.header.profile import load_profile
from privguard.models import FileResult


class AttributePlan(BaseModel):
    """One row of a dry run: what happens to an attribute, in how many files."""

    path: str
    keyword: str
    vr: str
    action: str
    reason: str
    files: int


class DryRun(BaseModel):
    """What a scrub would do, without writing anything."""

    files: list[FileResult]
    attributes: list[AttributePlan]


def dry_run(config: ScrubConfig, on_result: Callable[[FileResult], None] | None = None) -> DryRun:
    """Plan a scrub: per file the output it would get, per attribute the action (values never shown)."""
    key_file = config.key if isinstance(config.key, Path) else None
    key = load_key(config.key)
    cfg = config.model_copy(update={"key": key, "profile": load_profile(config.profile), "dry_run": True})
    check_paths(cfg, key_file)
    deid = Deidentifier(cfg.profile, key, project=cfg.project, vault=cfg.vault, options=set(cfg.options))
    rows: Counter[tuple[str, str, str, str, str]] = Counter()
    files: list[FileResult] = []
    try:
        for kind, path in walk_inputs(cfg.inputs, cfg.follow_symlinks):
            if kind == "duplicate":
                continue
            if kind == "symlink":
                res = FileResult(
                    input=str(path),
                    status="skipped",
                    reason="symbolic link (not followed; --follow-symlinks)",
                )
            elif not sniff(path):
                res = FileResult(input=str(path), status="skipped", reason="not a DICOM file")
            else:
                try:
                    src = read_source(path)
                    st, rel = deid.process(src, record=True)
                    for ch in st.changes:
                        rows[
                            (re.sub(r"\[\d+\]", "[*]", ch.path), ch.keyword, ch.vr, ch.action, ch.reason)
                        ] += 1
                    res = FileResult(input=str(path), output=rel, status="ok", counts=dict(st.counts))
                except PrivguardError as exc:
                    res = FileResult(input=str(path), status="failed", reason=str(exc))
                except Exception as exc:  # a malformation nobody foresaw: this file, not the run
                    res = FileResult(
                        input=str(path), status="failed", reason=f"unexpected error ({type(exc).__name__})"
                    )
            files.append(res)
            if on_result is not None:
                on_result(res)
    finally:
        deid.close()
    attributes = [
        AttributePlan(path=p, keyword=k, vr=v, action=a, reason=r, files=n)
        for (p, k, v, a, r), n in sorted(rows.items())
    ]
    return DryRun(files=files, attributes=attributes)
