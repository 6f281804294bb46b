"""Consent and usage checks against GDPR, HIPAA and PIPL policy profiles, with signed approvals.

A privacy officer asks: may this export go, to whom, under which rules and for
which patients? :func:`check` answers with a :class:`Decision` (``allow``,
``deny`` or ``needs_review``), findings that cite the rule, and the
per-patient inclusion list. :func:`sign_approval` lets the officer sign that
answer; :func:`verify_approval` is what the export path calls before it runs.

Not legal advice: the rules encode ``shared/reference/compliance.md``, which
marks its own interpretations; a person signs off each export.

::

    from privguard.compliance import check, load_request
    decision = check("request.yaml", "consents.yaml")
    decision.outcome, decision.inclusion.included
"""

from __future__ import annotations

from privguard.compliance.approval import (
    Approval,
    ApprovalPayload,
    PublicKey,
    SigningKey,
    approve_request,
    load_approval,
    sign_approval,
    verify_approval,
    write_approval,
)
from privguard.compliance.canonical import canonical_json, fingerprint
from privguard.compliance.consent import ConsentSet, DuoConsent, FhirConsent
from privguard.compliance.decision import EXIT_CODES, Decision, Exclusion, Finding, Inclusion
from privguard.compliance.engine import check
from privguard.compliance.loader import (
    available_policies,
    load_consents,
    load_policies,
    load_policy,
    load_request,
)
from privguard.compliance.policy import PolicySet, PolicyVersion, RegulationPolicy, Rule, SitePolicy
from privguard.compliance.request import ExportRequest

__all__ = [
    "EXIT_CODES",
    "Approval",
    "ApprovalPayload",
    "ConsentSet",
    "Decision",
    "DuoConsent",
    "Exclusion",
    "ExportRequest",
    "FhirConsent",
    "Finding",
    "Inclusion",
    "PolicySet",
    "PolicyVersion",
    "PublicKey",
    "RegulationPolicy",
    "Rule",
    "SigningKey",
    "SitePolicy",
    "approve_request",
    "available_policies",
    "canonical_json",
    "check",
    "fingerprint",
    "load_approval",
    "load_consents",
    "load_policies",
    "load_policy",
    "load_request",
    "sign_approval",
    "verify_approval",
    "write_approval",
]
