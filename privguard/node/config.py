"""The node's configuration: one YAML/JSON file (``privguard serve --config node.yaml``), validated.

Every field has a safe default except the key and the destination. Paths are
resolved relative to the current directory. Nothing here holds PHI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from privguard.deidentifier import DEFAULT_PROJECT
from privguard.header.profile import Option

#: An AE title: 1-16 characters of the default character repertoire, no backslash, not all spaces.
AETitle = Annotated[
    str, Field(min_length=1, max_length=16, pattern=r"^[\x20-\x5b\x5d-\x7e]*[^ ][\x20-\x5b\x5d-\x7e]*$")
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsFiles(_Model):
    """Certificates for one side of a DICOM TLS connection (PEM files)."""

    cert: Path | None = None
    """This side's certificate (required to listen with TLS; optional for a client)."""
    key: Path | None = None
    """This side's private key (mode 0600)."""
    ca: Path | None = None
    """Trusted CA certificates for the peer. When listening, peers must present a certificate it signed."""
    check_hostname: bool = True
    """Client side: check the server's certificate names the host connected to."""


class Listen(_Model):
    """Where the node accepts associations (the Storage SCP)."""

    host: str = "127.0.0.1"
    port: int = Field(default=11112, ge=0, le=65535)
    ae_title: AETitle = "PRIVGUARD"
    allowed_callers: tuple[AETitle, ...] = Field(min_length=1)
    """Calling AE titles accepted; any other is rejected at association."""
    tls: TlsFiles | None = None
    max_associations: int = Field(default=10, ge=1, le=1000)
    max_pdu: int = Field(default=0, ge=0)
    """0 means unlimited."""
    acse_timeout: float = Field(default=30.0, gt=0)
    dimse_timeout: float = Field(default=60.0, gt=0)
    network_timeout: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _tls_needs_cert(self) -> Listen:
        if self.tls is not None and (self.tls.cert is None or self.tls.key is None):
            raise ValueError("listen.tls needs cert and key")
        return self


class DimseDestination(_Model):
    """Forward with C-STORE to a DICOM node (the research archive)."""

    type: Literal["dimse"] = "dimse"
    host: str
    port: int = Field(ge=1, le=65535)
    ae_title: AETitle
    calling_ae_title: AETitle = "PRIVGUARD"
    tls: TlsFiles | None = None
    timeout: float = Field(default=30.0, gt=0)


class StowDestination(_Model):
    """Forward with STOW-RS to a DICOMweb endpoint (the studies URL's base, e.g. .../dicom-web)."""

    type: Literal["stow"] = "stow"
    url: str = Field(pattern=r"^https?://")
    ca: Path | None = None
    """CA bundle for an https endpoint (default: the system's)."""
    client_cert: Path | None = None
    client_key: Path | None = None
    username: str | None = None
    password_env: str | None = None
    """Name of an environment variable holding the password (never the password itself)."""
    timeout: float = Field(default=30.0, gt=0)


class FolderDestination(_Model):
    """Forward into a folder: ``<patient>/<study>/<series>/<instance>.dcm`` (pseudonymous names)."""

    type: Literal["folder"] = "folder"
    path: Path


Destination = Annotated[DimseDestination | StowDestination | FolderDestination, Field(discriminator="type")]


class Inclusion(_Model):
    """Only patients on a signed approval's inclusion list pass (verified when the node starts)."""

    request: Path
    approval: Path
    public_key: Path


class Filters(_Model):
    """What may pass. Instances that do not are acknowledged, counted and dropped (never stored)."""

    modalities: tuple[str, ...] | None = None
    """e.g. [CT, MR]; None lets every modality pass."""
    inclusion: Inclusion | None = None

    @field_validator("modalities")
    @classmethod
    def _upper(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(m.strip().upper() for m in v)


class Status(_Model):
    """The read-only HTTP status endpoint (loopback only)."""

    host: Literal["127.0.0.1", "::1", "localhost"] = "127.0.0.1"
    port: int = Field(default=8118, ge=0, le=65535)
    """0 picks a free port (written to ``<queue>/status.port``)."""


class NodeConfig(_Model):
    """``privguard serve`` configuration."""

    listen: Listen
    destination: Destination
    key_file: Path
    profile: str = "basic"
    options: frozenset[Option] = frozenset()
    project: str = Field(default=DEFAULT_PROJECT, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    vault: Path | None = None
    ocr: Literal["auto", "on", "off"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1)), ge=1, le=256)
    chunk_size: int = Field(default=16, ge=1, le=1024)
    queue: Path = Path("privguard-queue")
    """Durable queue folder (receive journal, incoming, outgoing, quarantine, ledger). On a local disk."""
    journal_segment_mb: int = Field(default=32, ge=1, le=4096)
    """Size of each receive-journal segment (written with zeros once, then reused)."""
    log: Path | None = None
    """JSON-lines event log; None writes to stderr."""
    audit_log: Path | None = None
    """The audit log (privguard.audit); default: ``PRIVGUARD_AUDIT_LOG`` or the per-user state folder."""
    audit_signing_key: Path | None = None
    """Ed25519 key (``privguard keys new-signing``) that signs each run's chain head."""
    operator: str | None = Field(default=None, max_length=64)
    """Who runs the node, for the audit run record (besides the OS user)."""
    status: Status | None = Status()
    filters: Filters = Filters()
    retry_initial: float = Field(default=1.0, gt=0)
    """Seconds before the first retry when the destination is down (doubling up to retry_max)."""
    retry_max: float = Field(default=30.0, gt=0)
    forward_batch: int = Field(default=64, ge=1, le=10000)
    """Instances sent per association."""
    remember_delivered_days: float | None = Field(default=90.0, gt=0)
    """How long a delivered instance is remembered, so that it is skipped when sent again (unless
    forward_again). The ledger keeps no older lines than that (and those the journal still needs);
    None remembers every instance forever, and the ledger then grows with the number delivered."""
    forward_again: bool = False
    """Forward an instance the node already delivered when the sender sends it again (default: skip it)."""

    @field_validator("options", mode="before")
    @classmethod
    def _option_names(cls, v: object) -> object:
        """Options by their PS3.15 names as the CLI takes them (clean-descriptors or clean_descriptors)."""
        from privguard.errors import PolicyError
        from privguard.header.profile import parse_option

        if isinstance(v, list | tuple | set | frozenset):
            try:
                return frozenset(parse_option(x) if isinstance(x, str) else x for x in v)
            except PolicyError as exc:
                raise ValueError(str(exc)) from None
        return v


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node configuration file (YAML or JSON)."""
    from privguard.policyio import load_model

    return load_model(NodeConfig, path, "node configuration")
