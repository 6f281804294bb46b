"""What a scrub run is given (:class:`ScrubConfig`) and what it returns (:class:`ScrubSummary`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from privguard.deidentifier import DEFAULT_PROJECT, PixelOptions
from privguard.header.profile import DeidProfile, Option
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

GiB = 1 << 30
DEFAULT_MAX_FILE_MEMORY = 2 * GiB
DEFAULT_FILE_TIMEOUT = 600.0
MAX_FAILURES_KEPT = 1000


class ScrubConfig(BaseModel):
    """Everything a scrub run needs (the CLI builds one from its options)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    inputs: list[Path]
    out: Path
    key: ProjectKey | Path
    profile: str | Path | DeidProfile = "basic"
    options: frozenset[Option] = frozenset()
    project: str = Field(default=DEFAULT_PROJECT, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    vault: Path | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024)
    report: Path | None = None
    report_inside_out: bool = False
    """Allow the report (it holds original paths) inside the output folder."""
    resume: bool = False
    dry_run: bool = False
    pixels: PixelOptions | None = None
    chunk_size: int = Field(default=16, ge=1, le=4096)
    executor: Literal["processes", "inline", "ray"] = "processes"
    """Where workers run: local processes (isolated, with limits), this process (no isolation,
    no limits; for library use and debugging), or a Ray cluster (the output folder must be shared)."""
    ray_address: str | None = None
    """Ray cluster address (``auto``, ``ray://host:10001``); None starts a local Ray."""
    follow_symlinks: bool = False
    """Follow symbolic links found inside input folders (otherwise they are skipped and counted)."""
    max_file_memory: int = Field(default=DEFAULT_MAX_FILE_MEMORY, ge=16 << 20)
    """Bytes of memory one worker may use beyond its start-up size while processing a file."""
    file_timeout: float = Field(default=DEFAULT_FILE_TIMEOUT, ge=0)
    """Seconds one file may take in a worker (0: no limit)."""
    digests: bool = False
    """Workers give each written file's result the SHA-256 of its input and output bytes
    (``FileResult.digests``), hashed from memory; the audit log asks for them."""


class RunInfo(BaseModel):
    """What binds outputs to a run: a resume must match it exactly (no values, no paths)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["privguard-journal"] = "privguard-journal"
    version: Literal[1] = 1
    key_id: str
    project: str
    profile: str
    profile_sha256: str
    options: tuple[str, ...]
    pixels: dict[str, Any] = Field(default_factory=dict)
    """OCR mode, redaction mode and SHA-256 of each allow-list (device excluded: it does not change bytes)."""
    vault: str | None = None
    """A keyed token of the vault's resolved path (None: keyed pseudonyms)."""

    def differences(self, other: RunInfo) -> list[str]:
        names = {
            "key_id": "key (key id)",
            "project": "project",
            "profile": "profile name",
            "profile_sha256": "profile contents",
            "options": "--option set",
            "pixels": "burned-in text options (--ocr, redaction, allow-lists)",
            "vault": "vault",
            "format": "journal format",
            "version": "journal version",
        }
        return [label for field, label in names.items() if getattr(self, field) != getattr(other, field)]


class ScrubSummary(BaseModel):
    """The outcome of a run (no PHI: failures carry their input path for the sender only)."""

    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    # -- burned-in text (issue 11) --
    ocr_files: int = 0
    """Files the burned-in text stage processed."""
    ocr_reasons: dict[str, int] = Field(default_factory=dict)
    """Why they were processed (the triage rule, e.g. ``modality``, ``image-type``), with counts."""
    needs_review: int = 0
    """Files written with Burned In Annotation YES: text the verification could not classify."""
    # -- end burned-in text --
    not_dicom: int = 0
    resumed: int = 0
    symlinks: int = 0
    """Symbolic links found in input folders and skipped (not followed without --follow-symlinks)."""
    duplicates: int = 0
    """Inputs named more than once (same resolved path): processed once."""
    retried: int = 0
    """Files sent again to a fresh worker after their worker died."""
    worker_deaths: int = 0
    seconds: float = 0.0
    files_per_second: float = 0.0
    counts: dict[str, int] = Field(default_factory=dict)
    failures: list[FileResult] = Field(default_factory=list)
    output: str = ""
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def summary_json(summary: ScrubSummary) -> dict[str, Any]:
    """The machine-readable summary printed by ``privguard scrub --json``."""
    data = summary.model_dump(exclude={"failures"})
    data["failures"] = [f.model_dump(exclude_none=True) for f in summary.failures]
    return data
