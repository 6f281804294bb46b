"""Scrub one input file through the Dataset path and the file path (header engine tests)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey


def scrub_both(tmp_path: Path, profile: str | Path, src: Path) -> tuple[Dataset, Dataset, bytes]:
    """(Dataset-path output, file-path output read back, the output file's bytes) for ``src``.

    A fresh key and a vault under ``tmp_path`` (hipaa-safe-harbor's random tokens need one);
    the file path must write the file.
    """
    deid = Deidentifier(profile, ProjectKey.generate(), vault=tmp_path / "tokens.vault")
    try:
        out_ds, _ = deid.dataset(pydicom.dcmread(src))
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    out = tmp_path / "out" / str(res.output)
    return out_ds, pydicom.dcmread(out), out.read_bytes()
