"""Fixtures for the compliance tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from privguard.compliance import SigningKey


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh key pair on disk: (private, public)."""
    return SigningKey.generate().save(tmp_path / "officer")
