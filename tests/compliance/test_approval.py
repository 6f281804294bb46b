"""Signing keys and the approval API beyond the scenario table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from privguard.compliance import (
    ExportRequest,
    PublicKey,
    SigningKey,
    load_approval,
    sign_approval,
    write_approval,
)
from privguard.compliance.approval import approve_request
from privguard.errors import AuditIntegrityError, ConfigError, KeyMaterialError

from .support import EXAMPLES, NOW, decide, example


def test_key_roundtrip_and_no_secret_in_repr(tmp_path: Path) -> None:
    key = SigningKey.generate(now=NOW)
    private, public = key.save(tmp_path / "k")
    loaded = SigningKey.load(private)
    assert loaded.key_id == key.key_id == PublicKey.load(public).key_id
    secret = json.loads(private.read_text())["key"]
    assert secret not in repr(loaded) and loaded.key_id in repr(loaded)
    message = b"payload"
    assert PublicKey.load(public).verify(loaded.sign(message), message)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(loaded)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d.update(format="other"), "is not a privguard signing key"),
        (lambda d: d.update(key=d["key"][:-2]), "is not a privguard signing key"),
        (lambda d: d.update(key_id="ed_0000000000000000"), "its key id does not match"),
    ],
)
def test_damaged_key_files_are_refused(tmp_path: Path, edit, error: str) -> None:  # type: ignore[no-untyped-def]
    private, _ = SigningKey.generate().save(tmp_path / "k")
    doc = json.loads(private.read_text())
    edit(doc)
    damaged = tmp_path / "damaged.key"
    damaged.write_text(json.dumps(doc))
    damaged.chmod(0o600)
    with pytest.raises(KeyMaterialError, match=error):
        SigningKey.load(damaged)


def test_missing_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="not found"):
        SigningKey.load(tmp_path / "none.key")
    with pytest.raises(KeyMaterialError, match="not found"):
        PublicKey.load(tmp_path / "none.pub")


def test_expiry_limits(signing_key: SigningKey) -> None:
    request, consents = example("pipl")
    model, d = ExportRequest.model_validate(request), decide(request, consents)
    for expires in (NOW, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=400)):
        with pytest.raises(ConfigError):
            sign_approval(model, d, signing_key, expires_at=expires, officer="DPO", now=NOW)


def test_decision_of_another_request_is_refused(signing_key: SigningKey) -> None:
    gdpr_req, gdpr_cons = example("gdpr")
    pipl_req, _ = example("pipl")
    with pytest.raises(AuditIntegrityError):
        sign_approval(
            ExportRequest.model_validate(pipl_req),
            decide(gdpr_req, gdpr_cons),
            signing_key,
            expires_at=NOW + dt.timedelta(days=1),
            officer="DPO",
            now=NOW,
        )


def test_approval_binds_decision_policies_profile_and_inclusion(
    signing_key: SigningKey, tmp_path: Path
) -> None:
    decision, approval = approve_request(
        EXAMPLES / "pipl-cross-border-request.yaml",
        signing_key,
        officer="PI officer",
        valid_for=dt.timedelta(days=7),
        consents=EXAMPLES / "pipl-cross-border-consents.yaml",
        now=NOW,
        out=tmp_path / "a.json",
    )
    p = approval.payload
    assert p.decision == decision.outcome == "allow"
    assert p.policies == decision.policies and p.policies[0].name == "pipl"
    assert p.deid_profile.name == "basic" and p.consent_snapshot == "sh-consents-2026-02-14"
    assert p.included_patients == ("CN-0001", "CN-0002", "CN-0005") and p.excluded_count == 2
    assert p.expires_at - p.approved_at == dt.timedelta(days=7)
    assert load_approval(tmp_path / "a.json") == approval
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_approval(approval, tmp_path / "a.json")


def test_load_approval_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_approval(tmp_path / "none.json")


def test_oversized_key_files_are_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from privguard.compliance import approval as approval_mod

    private, public = SigningKey.generate().save(tmp_path / "k")
    # A valid key followed by padding: only the size refuses it, and the file is never read whole.
    reads: list[int] = []
    real_open = open

    class CountingFile:
        def __init__(self, path: Path) -> None:
            self.fh = real_open(path, "rb")

        def __enter__(self) -> CountingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def read(self, n: int = -1) -> bytes:
            data = self.fh.read(n)
            reads.append(len(data))
            return data

    for path, load, what in (
        (public, PublicKey.load, "public signing key"),
        (private, SigningKey.load, "signing key"),
    ):
        path.write_bytes(path.read_bytes() + b" " * approval_mod.KEY_FILE_MAX_BYTES)
        monkeypatch.setattr(approval_mod, "open", lambda p, mode="rb": CountingFile(p), raising=False)
        reads.clear()
        with pytest.raises(KeyMaterialError, match=f"too large to be a privguard {what}"):
            load(path)
        assert sum(reads) == approval_mod.KEY_FILE_MAX_BYTES + 1
        monkeypatch.undo()


def test_oversized_approval_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from privguard.compliance import approval as approval_mod

    path = tmp_path / "a.json"
    path.write_bytes(b"[" * 5000 + b"]" * 5000)
    monkeypatch.setattr(approval_mod, "APPROVAL_MAX_BYTES", 4096)
    with pytest.raises(AuditIntegrityError, match="too large"):
        load_approval(path)
    monkeypatch.undo()
    # Within the cap, deep nesting is damage, not a crash.
    with pytest.raises(AuditIntegrityError, match="damaged or not a privguard approval"):
        load_approval(path)
