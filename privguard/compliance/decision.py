"""The decision: outcome, findings with citations, and the per-patient inclusion list.

Findings never carry values from the request: a rule's message, citation and
the field paths that are missing. Patient ids appear only in the inclusion
list, as the request names them (they stay with the sender).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from privguard.compliance._base import Model, Sha256Hex
from privguard.compliance.policy import PolicyVersion, Severity

Outcome = Literal["allow", "deny", "needs_review"]
FindingSeverity = Severity | Literal["pass"]
"""``pass``: a deny or review rule that applied and held (why the export may go)."""

#: Exit codes of ``privguard check`` by outcome (validation errors exit 2).
EXIT_CODES: dict[str, int] = {"allow": 0, "deny": 3, "needs_review": 5}


class Finding(Model):
    """One rule that fired."""

    rule_id: str
    regime: Literal["gdpr", "hipaa", "pipl", "privguard"]
    severity: FindingSeverity
    citation: str
    message: str
    checked: str = Field(description="What the rule checked.")
    missing: tuple[str, ...] = Field(default=(), description="Request fields that would satisfy the rule.")
    interpretation: bool = Field(default=False, description="Rests on an Interpretation in compliance.md.")
    policy: str = Field(description="Policy that defines the rule ('privguard' for engine rules).")
    overridden_by: str | None = Field(default=None, description="Site policy that changed the rule.")
    patients: int | None = Field(
        default=None,
        description="Exclusion findings: how many patients it excluded; patient-rule passes: for how many "
        "included patients it held.",
    )
    details: tuple[str, ...] = Field(
        default=(), description="'fact = value' for the facts the rule shows (never patient data)."
    )
    source: str | None = Field(default=None, description="The exporting source, in a multi-source request.")


class Exclusion(Model):
    """A patient left out of the export, with the rules that excluded them."""

    patient: str
    rules: tuple[str, ...]


class Inclusion(Model):
    """Which patients may go."""

    requested: int
    included: tuple[str, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def excluded_count(self) -> int:
        return len(self.excluded)


class ProfileRef(Model):
    """The de-identification profile a decision was made for."""

    name: str
    sha256: Sha256Hex


class SourceDecision(Model):
    """The decision for one exporting site of a multi-site request."""

    id: str
    outcome: Outcome
    regimes: tuple[str, ...]
    policies: tuple[str, ...] = Field(description="Names of the policies applied to this site.")
    requested: int
    included: int
    deny: tuple[str, ...] = Field(description="Ids of the deny findings.")
    review: tuple[str, ...] = Field(description="Ids of the review findings.")


class Decision(Model):
    """The answer to "may this export go, to whom, under which rules, and for which patients?"."""

    schema_version: Literal[1] = 1
    outcome: Outcome
    request_id: str
    request_sha256: Sha256Hex
    evaluated_at: dt.datetime
    regimes: tuple[str, ...] = Field(description="Regimes evaluated (declared and inferred).")
    policies: tuple[PolicyVersion, ...]
    deid_profile: ProfileRef
    consent_snapshot: str | None = None
    consents_sha256: Sha256Hex | None = None
    patient_table_sha256: Sha256Hex | None = Field(default=None, description="The patient table as read.")
    consent_table_sha256: Sha256Hex | None = Field(default=None, description="The consent table as read.")
    findings: tuple[Finding, ...]
    inclusion: Inclusion
    sources: tuple[SourceDecision, ...] = Field(
        default=(), description="Multi-site requests: each site's own decision (the outcome is the worst)."
    )

    def rule_ids(self, *severities: FindingSeverity) -> frozenset[str]:
        """Ids of the findings with any of ``severities`` (if none given: every finding but the passes)."""
        wanted = severities or ("deny", "review", "exclude", "info")
        return frozenset(f.rule_id for f in self.findings if f.severity in wanted)

    @property
    def exit_code(self) -> int:
        """The CLI exit code of this outcome: 0 allow, 3 deny, 5 needs_review."""
        return EXIT_CODES[self.outcome]
