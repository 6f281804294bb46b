"""Result types shared by the stages and returned to callers.

None of these hold PHI: attributes are named by tag path and keyword, actions
by code, files by the caller's reference. Values are never recorded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Actions recorded per attribute. Table E.1-1 codes plus privguard's own.
ActionName = Literal[
    "X",  # removed
    "Z",  # emptied
    "D",  # dummy value
    "K",  # kept
    "C",  # cleaned (text spans replaced, dates shifted, AE titles pseudonymized)
    "U",  # UID replaced
    "P",  # pseudonym (PatientID, PatientName, AccessionNumber, StudyID, hash overrides)
    "R",  # replaced by a site override's fixed value
    "A",  # added (de-identification method attributes)
]

ACTION_NAMES: dict[str, str] = {
    "X": "removed",
    "Z": "emptied",
    "D": "dummy",
    "K": "kept",
    "C": "cleaned",
    "U": "uid-replaced",
    "P": "pseudonymized",
    "R": "replaced",
    "A": "added",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttributeChange(_Model):
    """What happened to one attribute (no values)."""

    path: str = Field(description="Tag path, e.g. (0040,A730)[0].(0040,A123).")
    keyword: str
    vr: str
    action: ActionName
    reason: str = Field(description="basic | <option> | override | private | retired-group-length | ...")


class DeidRecord(_Model):
    """The structured record of a dataset's de-identification."""

    profile: str
    standard_edition: str
    counts: dict[str, int] = Field(description="Attributes per action code.")
    changes: tuple[AttributeChange, ...] = ()
    warnings: tuple[str, ...] = ()
    patient: str = Field(default="", description="The pseudonymous patient ID written.")


Status = Literal["ok", "skipped", "failed"]

SHA256_HEX = r"^[0-9a-f]{64}$"


class FileDigests(_Model):
    """SHA-256 (hex) of a file's input bytes as read and its output bytes as written.

    Computed by the worker that holds those bytes in memory (when the run asks
    for them: the audit log and the manifest use them), so nobody reads the
    files again. None where the bytes were not read or not written.
    """

    input_sha256: str | None = Field(default=None, pattern=SHA256_HEX)
    output_sha256: str | None = Field(default=None, pattern=SHA256_HEX)


class FileResult(_Model):
    """The outcome for one input file, as written to the sender's report."""

    input: str
    output: str | None = None
    status: Status
    reason: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    pixels: dict[str, object] | None = None
    digests: FileDigests | None = Field(
        default=None,
        exclude=True,
        description="For the audit log and the manifest; never written to the report or --json.",
    )
