"""Signed approvals: an officer's Ed25519 signature over a request, its decision and policies.

An approval binds

* the request's canonical SHA-256 (any change of meaning breaks it),
* the decision (outcome and the SHA-256 of the whole decision),
* the policy names, versions, ``as_of`` dates and content hashes,
* the de-identification profile's hash and the consent snapshot,
* the inclusion list (the patient ids that may go),
* the reasons it may go (the rules that passed, with their citations), and
* an expiry,

signed with the officer's Ed25519 key (``cryptography``). The export path
calls :func:`verify_approval` and refuses to run unless the signature
verifies, the request hash matches and the approval has not expired.

The approval file is written in one canonical form (sorted keys, two-space
indent, UTF-8, final newline); :func:`load_approval` rejects a file that is
not byte-for-byte in that form, so no byte of it can change unnoticed.

Key files: the private key is JSON with the raw 32-byte seed (mode 0600,
never overwritten, refused when group/others can read it); the public key is
JSON with the raw 32-byte public key and may be shared.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pydantic import Field, ValidationError, field_validator

from privguard.compliance._base import Label, Model, Sha256Hex
from privguard.compliance.canonical import canonical_json, fingerprint, sha256_hex
from privguard.compliance.consent import ConsentSet
from privguard.compliance.decision import Decision, ProfileRef
from privguard.compliance.engine import check
from privguard.compliance.loader import PolicyRef, load_request
from privguard.compliance.policy import PolicySet, PolicyVersion
from privguard.compliance.request import ExportRequest
from privguard.errors import AuditIntegrityError, ConfigError, ExportBlocked, KeyMaterialError
from privguard.policyio import MAX_BYTES
from privguard.pseudonym.keys import check_private_file, write_new_file, write_private_file

logger = logging.getLogger(__name__)

PRIVATE_FORMAT = "privguard-signing-key"
PUBLIC_FORMAT = "privguard-signing-public-key"
APPROVAL_FORMAT = "privguard-approval"
#: Longest validity an approval may have.
MAX_VALIDITY = dt.timedelta(days=366)


def _key_id(public_raw: bytes) -> str:
    return "ed_" + sha256_hex(b"privguard/v1/signing-key-id" + public_raw)[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: object, length: int) -> bytes:
    if not isinstance(text, str):
        raise ValueError("key")
    raw = base64.urlsafe_b64decode(text.encode("ascii"))
    if len(raw) != length or _b64(raw) != text:
        raise ValueError("key")
    return raw


#: The largest key file read (privguard's are under 1 KiB); a larger file is refused unread.
KEY_FILE_MAX_BYTES = 64 << 10
#: The largest approval file read (the cap of every other document privguard reads).
APPROVAL_MAX_BYTES = MAX_BYTES


def _not_a_key(path: Path, what: str) -> str:
    return f"{path} is not a privguard {what} (make one with: privguard keys new-signing)"


def _key_document(path: Path, file_what: str, what: str, fmt: str) -> dict[str, Any]:
    """A key file's JSON object of format ``fmt`` (Ed25519, version 1), read with a size cap."""
    try:
        raw = _read_capped(path, KEY_FILE_MAX_BYTES)
    except OSError as exc:
        raise KeyMaterialError(f"{file_what} {path} cannot be read ({exc.strerror})") from None
    if raw is None:
        raise KeyMaterialError(f"{path} is too large to be a privguard {what}")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyMaterialError(_not_a_key(path, what)) from None
    if not isinstance(doc, dict):
        raise KeyMaterialError(_not_a_key(path, what))
    if (doc.get("format"), doc.get("version"), doc.get("algorithm")) != (fmt, 1, "ed25519"):
        raise KeyMaterialError(_not_a_key(path, what))
    return doc


def _read_capped(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path``, or None when it holds more than ``limit`` (never read in full)."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data if len(data) <= limit else None


class PublicKey:
    """An Ed25519 public key that verifies approvals."""

    __slots__ = ("_key", "key_id", "raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise KeyMaterialError("an Ed25519 public key is 32 bytes")
        self.raw = bytes(raw)
        self._key = Ed25519PublicKey.from_public_bytes(self.raw)
        self.key_id = _key_id(self.raw)

    def __repr__(self) -> str:
        return f"PublicKey(key_id={self.key_id!r})"

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> bytes:
        doc = {
            "format": PUBLIC_FORMAT,
            "version": 1,
            "algorithm": "ed25519",
            "key_id": self.key_id,
            "key": _b64(self.raw),
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def load(cls, path: str | Path) -> PublicKey:
        """Read a public key file."""
        path = Path(path)
        if not path.is_file():
            raise KeyMaterialError(f"public key file {path} not found")
        what = "public signing key"
        doc = _key_document(path, "public key file", what, PUBLIC_FORMAT)
        try:
            key = cls(_unb64(doc["key"], 32))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
            raise KeyMaterialError(_not_a_key(path, what)) from None
        if doc.get("key_id") != key.key_id:
            raise KeyMaterialError(f"public key file {path} is damaged: its key id does not match its key")
        return key


class SigningKey:
    """An officer's Ed25519 signing key. The secret never appears in repr, logs or errors."""

    __slots__ = ("__key", "created", "public_key")

    def __init__(self, seed: bytes, created: dt.datetime) -> None:
        if len(seed) != 32:
            raise KeyMaterialError("an Ed25519 private key is 32 bytes")
        self.__key = Ed25519PrivateKey.from_private_bytes(seed)
        self.created = created
        self.public_key = PublicKey(self.__key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SigningKey is not picklable")

    @classmethod
    def generate(cls, now: dt.datetime | None = None) -> SigningKey:
        """Make a new random key."""
        return cls(secrets.token_bytes(32), now or dt.datetime.now(dt.UTC))

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message``."""
        return self.__key.sign(message)

    def _private_json(self) -> bytes:
        seed = self.__key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        doc = {
            "format": PRIVATE_FORMAT,
            "version": 1,
            "algorithm": "ed25519",
            "key_id": self.key_id,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "key": _b64(seed),
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    def save(self, prefix: str | Path) -> tuple[Path, Path]:
        """Write ``PREFIX.key`` (mode 0600) and ``PREFIX.pub`` (mode 0644); never overwrite.

        Returns
        -------
        tuple of Path
            The private and public key paths.
        """
        prefix = Path(prefix)
        private, public = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
        if public.exists():
            raise KeyMaterialError(f"{public} already exists; refusing to overwrite a key")
        write_private_file(private, self._private_json())
        write_new_file(public, self.public_key.to_json(), 0o644)
        return private, public

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        """Read a private key file, refusing one with unsafe permissions or a wrong key id."""
        path = Path(path)
        check_private_file(path, "signing key file")
        what = "signing key"
        doc = _key_document(path, "signing key file", what, PRIVATE_FORMAT)
        try:
            seed = _unb64(doc["key"], 32)
            created = dt.datetime.fromisoformat(str(doc["created"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
            raise KeyMaterialError(_not_a_key(path, what)) from None
        key = cls(seed, created)
        if doc.get("key_id") != key.key_id:
            raise KeyMaterialError(f"signing key file {path} is damaged: its key id does not match its key")
        return key


class ApprovalPayload(Model):
    """What the officer signs."""

    schema_version: Literal[1] = 1
    approval_id: str = Field(pattern=r"^ap_[0-9a-f]{32}$")
    request_id: str
    request_sha256: Sha256Hex
    decision: Literal["allow", "needs_review"]
    decision_sha256: Sha256Hex
    reviewed: bool = Field(description="The officer reviewed the needs_review findings.")
    policies: tuple[PolicyVersion, ...] = Field(min_length=1)
    deid_profile: ProfileRef
    consent_snapshot: str | None
    consents_sha256: Sha256Hex | None
    included_patients: tuple[str, ...]
    excluded_count: int = Field(ge=0)
    reasons: tuple[str, ...] = Field(
        default=(),
        description="Why it may go: each pass finding as 'RULE-ID (citation)', in the decision's order.",
    )
    approved_at: dt.datetime
    expires_at: dt.datetime
    officer: Label
    key_id: str = Field(pattern=r"^ed_[0-9a-f]{16}$")

    @field_validator("approved_at", "expires_at")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None or v.utcoffset() != dt.timedelta(0):
            raise ValueError("must be a UTC time")
        return v


class Approval(Model):
    """A signed approval (the file ``privguard approve`` writes)."""

    format: Literal["privguard-approval"]
    payload: ApprovalPayload
    signature: str = Field(pattern=r"^[0-9a-f]{128}$", description="Ed25519 signature, lower-case hex.")

    def to_bytes(self) -> bytes:
        """The canonical file form."""
        return (
            json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        ).encode()


def sign_approval(
    request: ExportRequest,
    decision: Decision,
    key: SigningKey,
    *,
    expires_at: dt.datetime,
    officer: str,
    reviewed: bool = False,
    now: dt.datetime | None = None,
) -> Approval:
    """Sign an approval of ``request`` with the decision ``check`` returned for it.

    Parameters
    ----------
    request
        The validated request.
    decision
        Its decision; must be for this request (same canonical hash).
    key
        The officer's signing key.
    expires_at
        When the approval stops being valid (timezone-aware, at most a year ahead).
    officer
        Name or role of the approving officer (recorded, signed).
    reviewed
        Must be True to approve a ``needs_review`` decision.
    now
        Signing time (default: the current UTC time).

    Raises
    ------
    ExportBlocked
        The decision is ``deny``, or ``needs_review`` without ``reviewed``.
    AuditIntegrityError
        The decision was made for another request.
    ConfigError
        The expiry is not in the future or too far ahead.
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if expires_at.tzinfo is None:
        raise ConfigError("the approval expiry must be timezone-aware")
    expires_at = expires_at.astimezone(dt.UTC)
    request_hash = fingerprint(request)
    if not hmac.compare_digest(request_hash, decision.request_sha256):
        raise AuditIntegrityError("the decision was made for a different request; run the check again")
    if decision.outcome == "deny":
        raise ExportBlocked("the check denied this export; there is nothing to approve")
    if decision.outcome == "needs_review" and not reviewed:
        raise ExportBlocked(
            "the check needs review; approve only after reviewing the findings (reviewed=True)"
        )
    if not now < expires_at <= now + MAX_VALIDITY:
        raise ConfigError("the approval expiry must be in the future and at most a year ahead")
    payload = ApprovalPayload(
        approval_id="ap_" + secrets.token_hex(16),
        request_id=request.request_id,
        request_sha256=request_hash,
        decision=decision.outcome,
        decision_sha256=fingerprint(decision),
        reviewed=reviewed,
        policies=decision.policies,
        deid_profile=decision.deid_profile,
        consent_snapshot=decision.consent_snapshot,
        consents_sha256=decision.consents_sha256,
        included_patients=decision.inclusion.included,
        excluded_count=decision.inclusion.excluded_count,
        reasons=tuple(
            f"{f.rule_id} ({f.citation})" + (f" [source {f.source}]" if f.source else "")
            for f in decision.findings
            if f.severity == "pass"
        ),
        approved_at=now,
        expires_at=expires_at,
        officer=officer,
        key_id=key.key_id,
    )
    approval = Approval(
        format=APPROVAL_FORMAT, payload=payload, signature=key.sign(canonical_json(payload)).hex()
    )
    logger.info("approval signed by key %s", key.key_id)
    return approval


def write_approval(approval: Approval, path: str | Path) -> None:
    """Write an approval file (never overwrites)."""
    write_new_file(Path(path), approval.to_bytes(), 0o644, "an approval")


def load_approval(path: str | Path) -> Approval:
    """Read an approval file, rejecting anything that is not exactly the canonical form.

    Raises
    ------
    AuditIntegrityError
        The file does not parse, does not validate, or differs in any byte from
        the canonical form of what it contains.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"approval file {path} not found")
    try:
        raw = _read_capped(path, APPROVAL_MAX_BYTES)
    except OSError as exc:
        raise ConfigError(f"approval file {path} cannot be read ({exc.strerror})") from None
    if raw is None:
        raise AuditIntegrityError(
            f"approval {path} is too large (over {APPROVAL_MAX_BYTES >> 20} MiB) to be a privguard approval"
        )
    return approval_from_bytes(raw, str(path))


def approval_from_bytes(raw: bytes, source: str = "approval") -> Approval:
    """Parse approval bytes strictly (see :func:`load_approval`)."""
    try:
        approval = Approval.model_validate(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError, RecursionError):
        raise AuditIntegrityError(f"approval {source} is damaged or not a privguard approval") from None
    if approval.to_bytes() != raw:
        raise AuditIntegrityError(
            f"approval {source} has been modified (it is not in its signed canonical form)"
        )
    return approval


def verify_approval(
    request: ExportRequest,
    approval: Approval | str | Path,
    public_key: PublicKey | str | Path,
    *,
    now: dt.datetime | None = None,
) -> ApprovalPayload:
    """Verify that ``approval`` is a valid, unexpired approval of exactly ``request``.

    Checks, in order: the approval is signed by ``public_key`` (signature
    first, before anything in it is trusted), the request's canonical hash is
    the signed one, and ``now`` lies between signing and expiry.

    Parameters
    ----------
    request
        The validated request the export is about to run.
    approval
        The approval, or its file path.
    public_key
        The officer's public key, or its file path.
    now
        Time of the check (timezone-aware; default: the current UTC time).

    Returns
    -------
    ApprovalPayload
        The verified payload (inclusion list, policies, profile hash...).

    Raises
    ------
    AuditIntegrityError
        Signature, key or request hash does not match (tampering).
    ExportBlocked
        The approval has expired or is not yet valid.
    """
    if not isinstance(approval, Approval):
        approval = load_approval(approval)
    if not isinstance(public_key, PublicKey):
        public_key = PublicKey.load(public_key)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    payload = approval.payload
    signature = bytes.fromhex(approval.signature)
    if not public_key.verify(signature, canonical_json(payload)):
        raise AuditIntegrityError("the approval's signature does not verify with this public key")
    if payload.key_id != public_key.key_id:
        raise AuditIntegrityError("the approval names a different signing key")
    if not hmac.compare_digest(payload.request_sha256, fingerprint(request)):
        raise AuditIntegrityError("the request has changed since it was approved (its hash does not match)")
    if now < payload.approved_at:
        raise ExportBlocked("the approval is dated in the future; check the clock")
    if now >= payload.expires_at:
        raise ExportBlocked("the approval has expired; ask the privacy officer for a new one")
    logger.info("approval verified (key %s)", public_key.key_id)
    return payload


def approve_request(
    request: ExportRequest | str | Path,
    key: SigningKey | str | Path,
    *,
    officer: str,
    valid_for: dt.timedelta,
    consents: ConsentSet | str | Path | None = None,
    policies: PolicySet | Sequence[PolicyRef] | None = None,
    reviewed: bool = False,
    now: dt.datetime | None = None,
    out: str | Path | None = None,
) -> tuple[Decision, Approval]:
    """Check a request and, unless it is denied, sign (and optionally write) an approval.

    This is what ``privguard approve`` runs: :func:`~privguard.compliance.check`,
    then :func:`sign_approval`, then :func:`write_approval` when ``out`` is given.
    ``consents`` and ``policies`` take what ``check`` takes.

    Raises
    ------
    ExportBlocked
        The check denied the export (the message lists the deny rule ids), or
        it needs review and ``reviewed`` is False.
    """
    base_dir = None
    if isinstance(request, str | Path):
        base_dir = Path(request).parent
        request = load_request(request)
    if not isinstance(key, SigningKey):
        key = SigningKey.load(key)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    decision = check(request, consents, policies, now=now, base_dir=base_dir)
    if decision.outcome == "deny":
        ids = ", ".join(sorted(decision.rule_ids("deny")))
        raise ExportBlocked(f"the check denied this export ({ids}); nothing was signed")
    if decision.outcome == "needs_review" and not reviewed:
        ids = ", ".join(sorted(decision.rule_ids("review")))
        raise ExportBlocked(f"the check needs review ({ids}); sign only after review (--reviewed)")
    approval = sign_approval(
        request, decision, key, expires_at=now + valid_for, officer=officer, reviewed=reviewed, now=now
    )
    if out is not None:
        write_approval(approval, out)
    return decision, approval
