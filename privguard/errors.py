"""privguard's exceptions and warnings.

Every message is free of PHI: it names what failed and what to do, never a
value read from a file. A file is named by the caller (the CLI shows the
operator the local path; logs and audit records use a keyed token).

::

    PrivguardError                  base class
    ├── ConfigError                 exit 2: nothing was processed
    │   ├── PolicyError             profile / policy file missing or invalid
    │   └── KeyMaterialError        key missing, malformed, or readable by others
    ├── InputError                  one input file; a batch records it and goes on
    │   ├── NotDicomError           not a DICOM file
    │   └── UnsupportedEncodingError  pixel encoding without an installed codec
    ├── ProcessingError             de-identification of one file failed
    │   ├── OCRUnavailableError     OCR engine or weights missing
    │   └── VerificationError       PHI still found after processing
    ├── ExportBlocked               exit 3: the policy check denied the export
    ├── OutputError                 would write into the input, or the write failed
    └── AuditIntegrityError         exit 4: a signature or hash chain does not verify
"""

from __future__ import annotations


class PrivguardError(Exception):
    """Base class of privguard's errors. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class ConfigError(PrivguardError):
    """The run cannot start: bad options, profile or key."""

    exit_code = 2


class PolicyError(ConfigError):
    """A profile or policy file is missing or does not validate."""


class KeyMaterialError(ConfigError):
    """A key file is missing, malformed, or has unsafe permissions."""


class InputError(PrivguardError):
    """One input file cannot be processed."""


class NotDicomError(InputError):
    """The input is not a DICOM file."""


class UnsupportedEncodingError(InputError):
    """The pixel data uses an encoding no installed codec can handle."""


class ProcessingError(PrivguardError):
    """De-identification of one file failed."""


class OCRUnavailableError(ProcessingError):
    """The OCR engine or its weights are not installed."""


class VerificationError(ProcessingError):
    """Identifying content was still found after processing."""


class ExportBlocked(PrivguardError):
    """The policy check denied the export."""

    exit_code = 3


class OutputError(PrivguardError):
    """The output cannot be written safely."""

    exit_code = 2


class AuditIntegrityError(PrivguardError):
    """A signature or a hash chain does not verify."""

    exit_code = 4


class PrivguardWarning(UserWarning):
    """Base class of privguard's warnings."""


class ConservativeActionWarning(PrivguardWarning):
    """A stricter action than asked for was taken because the exact one was unsafe."""
