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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Public name -> the submodule defining it. Imported on first use, so that importing one
#: submodule (``privguard.compliance.canonical`` from the audit log) does not load the policy
#: engine, its tables and cryptography.
_LAZY = {
    **dict.fromkeys(
        (
            "Approval", "ApprovalPayload", "PublicKey", "SigningKey", "approve_request", "load_approval",
            "sign_approval", "verify_approval", "write_approval",
        ),
        "approval",
    ),
    **dict.fromkeys(("canonical_json", "fingerprint"), "canonical"),
    **dict.fromkeys(("ConsentSet", "DuoConsent", "FhirConsent"), "consent"),
    **dict.fromkeys(("EXIT_CODES", "Decision", "Exclusion", "Finding", "Inclusion"), "decision"),
    "check": "engine",
    **dict.fromkeys(
        ("available_policies", "load_consents", "load_policies", "load_policy", "load_request"), "loader"
    ),
    **dict.fromkeys(("PolicySet", "PolicyVersion", "RegulationPolicy", "Rule", "SitePolicy"), "policy"),
    "ExportRequest": "request",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
