"""Safe private attributes (Table E.3.10-1) holding what they must not, under ``research``.

Found by the new fuzz operators (op_private_spoof, op_safe_private_values): the header
engine kept a safe private attribute whatever its value, so a name in an IS attribute, and
the CodeMeaning or a person name inside the item of a safe private sequence (also in an
implicit VR file, where the scanner cannot see into it), were written. Each case must end
refused with a reason, or written without the name.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fuzz import mutants as mu
from fuzz.test_adv_fuzz import _philips_sequence, _scrub, _seed


@pytest.mark.parametrize("k", range(2))
@pytest.mark.parametrize("seed_file", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_safe_private_values_are_checked(tmp_path: Path, k: int, seed_file: str) -> None:
    p = _seed(seed_file)
    rng = random.Random(k)  # k=0: a safe private sequence's CodeMeaning, k=1: a name in an IS value
    data = mu.op_safe_private_values(rng, p, p.data)
    assert data != p.data
    status, reason, out = _scrub(data, "research", tmp_path)
    assert not any(mk in out for mk in mu.extra_markers(p))
    assert status == "ok" or reason


@pytest.mark.parametrize("seed_file", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_a_name_in_a_safe_private_sequence_is_not_written(tmp_path: Path, seed_file: str) -> None:
    p = _seed(seed_file)
    for tag in (0x00081070, 0x0040A123):
        marker = mu._m(p, "NO")
        status, reason, out = _scrub(_philips_sequence(p, tag, marker), "research", tmp_path / str(tag))
        assert marker not in out
        assert status == "ok" or reason
