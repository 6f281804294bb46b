"""Which received instances may pass: modalities, and patients on a signed inclusion list.

Filtering happens on receipt, before anything is written to disk: an instance
that does not pass is acknowledged (so the sender does not retry it),
counted by reason and dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydicom.dataset import Dataset

from privguard.node.config import Filters


@dataclass(frozen=True)
class Verdict:
    passes: bool
    reason: str | None = None


class InstanceFilter:
    def __init__(self, filters: Filters) -> None:
        self.modalities = frozenset(filters.modalities) if filters.modalities is not None else None
        self.patients: frozenset[str] | None = None
        self.expires: dt.datetime | None = None
        if filters.inclusion is not None:
            from privguard.compliance import load_request, verify_approval

            inc = filters.inclusion
            payload = verify_approval(load_request(inc.request), inc.approval, inc.public_key)
            self.patients = frozenset(payload.included_patients)
            self.expires = payload.expires_at

    @property
    def tags(self) -> list[int]:
        """Tags the filter reads (Modality, PatientID)."""
        return [0x00080060, 0x00100020]

    def check(self, ds: Dataset) -> Verdict:
        if self.modalities is not None:
            modality = str(ds.get("Modality", "") or "").strip().upper()
            if modality not in self.modalities:
                return Verdict(False, "modality-not-selected")
        if self.patients is not None:
            if self.expires is not None and dt.datetime.now(dt.UTC) >= self.expires:
                return Verdict(False, "approval-expired")
            if str(ds.get("PatientID", "") or "").strip() not in self.patients:
                return Verdict(False, "patient-not-included")
        return Verdict(True)
