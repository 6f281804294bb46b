"""The fail-closed invariant on files generated from the data dictionary (see :mod:`fuzz.generative`).

The mutation fuzzers start from pydicom's bundled files; these files draw their attributes
from the whole dictionary, at any depth, in every encoding. Two promises are checked:
every file is refused with a reason or written clean (the invariant of
:func:`fuzz.mutants.violations`, plus no replaced instance UID left), and a valid generated
file with nothing the output check must refuse is written, not refused (a refusal there is
a false alarm a hospital would meet on real data).
"""

from __future__ import annotations

import collections
import io
import warnings
from pathlib import Path

import pydicom
import pytest

from fuzz.generative import Generated, check, generated
from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))
PROFILES = ("basic", "research", "hipaa-safe-harbor")


Outcome = tuple[collections.Counter[str], list[str], list[str]]


def _run(profile: str, files: list[Generated], root: Path) -> Outcome:
    deid = Deidentifier(profile, KEY, vault=root / "vault.sqlite")
    statuses: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    wrongly_refused: list[str] = []
    try:
        for i, m in enumerate(files):
            res, found = check(deid, m, root / str(i))
            statuses[res.status] += 1
            problems += [f"#{i} {m.ops}: {p}" for p in found]
            if res.status != "ok" and m.clean_input:
                wrongly_refused.append(f"#{i}: {res.reason}")
    finally:
        deid.close()
    return statuses, problems, wrongly_refused


def test_the_generator_writes_valid_varied_files() -> None:
    files = list(generated(seed=11, count=40, profile="basic"))
    syntaxes: collections.Counter[str] = collections.Counter()
    for m in files:
        assert m.markers and m.clean_input == (not m.copies)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(m.data))
            ds.decode()
            for _ in ds.iterall():
                pass
        syntaxes[str(ds.file_meta.TransferSyntaxUID)] += 1
    assert len(syntaxes) == 4  # explicit and implicit little endian, big endian, deflated
    assert sum(1 for m in files if m.uids) > 20
    # Same seed, same files.
    assert [m.data for m in generated(seed=11, count=5, profile="basic")] == [m.data for m in files[:5]]


@pytest.mark.parametrize("profile", PROFILES)
def test_generated_files_are_refused_or_clean(tmp_path: Path, profile: str) -> None:
    files = list(generated(seed=20261207 + len(profile), count=80, profile=profile, mutate=0.4))
    statuses, problems, _ = _run(profile, files, tmp_path)
    assert problems == []
    assert statuses["ok"] > 30 and statuses["failed"] > 5


@pytest.mark.parametrize("profile", PROFILES)
def test_valid_generated_files_are_written(tmp_path: Path, profile: str) -> None:
    files = [m for m in generated(seed=7 + len(profile), count=80, profile=profile) if m.clean_input]
    assert len(files) > 40
    statuses, problems, wrongly_refused = _run(profile, files, tmp_path)
    assert problems == []
    assert wrongly_refused == []
    assert statuses["ok"] == len(files)


@pytest.mark.nightly
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(3))
def test_many_generated_files_nightly(tmp_path: Path, profile: str, seed: int) -> None:
    files = list(generated(seed=9000 + seed, count=1500, profile=profile, mutate=0.3))
    statuses, problems, wrongly_refused = _run(profile, files, tmp_path)
    assert problems == []
    assert wrongly_refused == []
    assert statuses["ok"] > 500
