"""Keyed pseudonyms, the token vault, keys and date shifting."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import stat
from pathlib import Path

import pytest
from pydicom.uid import UID

from privguard.errors import ConfigError, KeyMaterialError
from privguard.pseudonym.dates import shift_da, shift_dt, shift_value
from privguard.pseudonym.keys import ProjectKey
from privguard.pseudonym.pseudonymizer import KeyedPseudonymizer, make_pseudonymizer
from privguard.pseudonym.vault import VaultPseudonymizer

UID_RE = re.compile(r"^2\.25\.[1-9][0-9]{0,38}$")


def test_keyed_uids_are_valid_deterministic_and_project_scoped(key: ProjectKey) -> None:
    a, b = KeyedPseudonymizer(key, "p1"), KeyedPseudonymizer(key, "p1")
    c = KeyedPseudonymizer(key, "p2")
    for i in range(200):
        original = f"1.2.840.113619.2.55.3.{i}"
        u = a.uid(original)
        assert UID_RE.match(u) and len(u) <= 64 and UID(u).is_valid
        assert u == b.uid(original)
        assert u != c.uid(original)
    assert len({a.uid(str(i)) for i in range(1000)}) == 1000


def test_uids_are_rfc9562_version_8_uuids(key: ProjectKey) -> None:
    import uuid

    u = uuid.UUID(int=int(KeyedPseudonymizer(key, "p").uid("1.2.3").split(".")[2]))
    assert u.version == 8 and u.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    ("kind", "prefix"), [("patient", "P"), ("accession", "A"), ("study", "S"), ("other", "I"), ("ae", "AE")]
)
def test_identifier_forms(kind: str, prefix: str, key: ProjectKey) -> None:
    p = KeyedPseudonymizer(key, "p")
    v = p.identifier(kind, "MRN1234567")  # type: ignore[arg-type]
    assert re.fullmatch(prefix + "[0-9A-HJKMNP-TV-Z]+", v) and len(v) == 16
    assert v == KeyedPseudonymizer(key, "p").identifier(kind, "MRN1234567")  # type: ignore[arg-type]
    assert v != p.identifier(kind, "MRN1234568")  # type: ignore[arg-type]


def test_date_offsets_are_nonzero_and_bounded(key: ProjectKey) -> None:
    p = KeyedPseudonymizer(key, "p", date_shift_days=30)
    offsets = {p.date_offset(f"id:\x00{i}") for i in range(500)}
    assert 0 not in offsets and min(offsets) >= -30 and max(offsets) <= 30 and len(offsets) > 40
    assert p.date_offset("id:\x00x") == KeyedPseudonymizer(key, "p", 30).date_offset("id:\x00x")


def test_key_file_roundtrip_and_permissions(tmp_path: Path) -> None:
    key = ProjectKey.generate()
    path = tmp_path / "k.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = ProjectKey.load(path)
    assert loaded.key_id == key.key_id
    assert KeyedPseudonymizer(loaded, "p").uid("1.2") == KeyedPseudonymizer(key, "p").uid("1.2")
    with pytest.raises(KeyMaterialError, match="refusing to overwrite"):
        key.save(path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyMaterialError, match="chmod 600"):
        ProjectKey.load(path)


def test_key_never_shown(tmp_path: Path) -> None:
    key = ProjectKey.generate()
    secret = key.to_json().decode()
    import base64
    import json

    raw = json.loads(secret)["key"]
    assert raw not in repr(key) and raw not in str(key)
    assert base64.urlsafe_b64decode(raw) not in repr(key).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not a privguard project key"),
        (b'{"format": "other"}', "not a privguard project key"),
        (
            b'{"format": "privguard-project-key", "version": 1, "key_id": "pk_0000000000000000",'
            b' "created": "2026-01-01T00:00:00Z", "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
            "damaged",
        ),
    ],
)
def test_bad_key_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyMaterialError, match=message):
        ProjectKey.load(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="not found"):
        ProjectKey.load(tmp_path / "none.key")


# -- vault (random tokens) -------------------------------------------------------------


def test_vault_tokens_are_random_but_remembered(tmp_path: Path, key: ProjectKey) -> None:
    vault = tmp_path / "vault.db"
    v1 = VaultPseudonymizer(key, "p", vault)
    pid = v1.identifier("patient", "MRN1234567")
    uid = v1.uid("1.2.3.4")
    off = v1.date_offset("id:\x00MRN1234567")
    v1.close()
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    v2 = VaultPseudonymizer(key, "p", vault)
    assert v2.identifier("patient", "MRN1234567") == pid
    assert v2.uid("1.2.3.4") == uid and UID_RE.match(uid)
    assert v2.date_offset("id:\x00MRN1234567") == off != 0
    assert v2.reveal("patient", pid) == "MRN1234567"
    # Not derived from the identifier: a fresh vault gives other tokens.
    v3 = VaultPseudonymizer(key, "p", tmp_path / "other.db")
    assert v3.identifier("patient", "MRN1234567") != pid
    # The vault holds no plaintext.
    v2.close()
    v3.close()
    for f in tmp_path.glob("vault.db*"):
        assert b"MRN1234567" not in f.read_bytes()


def test_vault_refuses_another_key_or_project(tmp_path: Path, key: ProjectKey) -> None:
    VaultPseudonymizer(key, "p", tmp_path / "v.db").close()
    with pytest.raises(KeyMaterialError, match="another key id"):
        VaultPseudonymizer(ProjectKey.generate(), "p", tmp_path / "v.db")
    with pytest.raises(KeyMaterialError, match="another project"):
        VaultPseudonymizer(key, "q", tmp_path / "v.db")


def _vault_worker(args: tuple[bytes, str, int]) -> list[str]:
    secret, path, _ = args
    v = VaultPseudonymizer(ProjectKey.from_bytes(secret), "p", path)
    out = [v.identifier("patient", f"MRN{i}") for i in range(50)]
    v.close()
    return out


def test_vault_is_consistent_across_processes(tmp_path: Path) -> None:
    secret = os.urandom(32)
    path = str(tmp_path / "v.db")
    VaultPseudonymizer(ProjectKey.from_bytes(secret), "p", path).close()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        a, b = pool.map(_vault_worker, [(secret, path, 0), (secret, path, 1)])
    assert a == b and len(set(a)) == 50


def test_random_method_needs_a_vault(key: ProjectKey) -> None:
    with pytest.raises(ConfigError, match="--vault"):
        make_pseudonymizer("random", key, "p")


# -- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240105", 10, "20240115"),
        ("20240105", -10, "20231226"),
        ("2024.01.05", 1, "20240106"),
        ("20240228", 1, "20240229"),
        ("20240101-20240131", 1, "20240102-20240201"),
        ("", 5, ""),
        ("2024010", 1, None),
        ("20241301", 1, None),
    ],
)
def test_shift_da(value: str, days: int, expected: str | None) -> None:
    assert shift_da(value, days) == expected


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240105101500.123456+0100", 1, "20240106101500.123456+0100"),
        ("20240105", -5, "20231231"),
        ("202401", 30, "202402"),
        ("2024", -200, "2023"),
        ("garbage", 1, None),
    ],
)
def test_shift_dt(value: str, days: int, expected: str | None) -> None:
    assert shift_dt(value, days) == expected


def test_shift_keeps_intervals() -> None:
    a, b = "20200101", "20230615"
    for days in (-365, -1, 1, 200):
        sa, sb = shift_value("DA", a, days), shift_value("DA", b, days)
        assert sa and sb
        da = dt.date(int(sa[:4]), int(sa[4:6]), int(sa[6:]))
        db = dt.date(int(sb[:4]), int(sb[4:6]), int(sb[6:]))
        assert (db - da) == dt.date(2023, 6, 15) - dt.date(2020, 1, 1)
    assert shift_value("DA", "20200101\\20200102", 1) == "20200102\\20200103"
