"""The policy check: evaluate rules over facts and decide allow, deny or needs_review.

Order of work (each step is small and PHI-free):

1. validate inputs and load the de-identification profile the request names;
2. compute request facts (request, profile, policy tables, evaluation time);
3. per patient: compute patient facts and apply patient-scope rules; a rule
   that fires excludes the patient (by id, with the rule ids);
4. compute dataset facts over the patients left and apply request-scope rules;
5. add the engine's own findings (regimes not named or not checked, HIPAA
   pathway missing, nobody left to export) and derive the outcome: any
   ``deny`` finding denies, else any ``review`` finding needs review, else allow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import ChainMap
from collections.abc import Mapping, Sequence
from pathlib import Path

from privguard.compliance._base import Regime
from privguard.compliance.canonical import fingerprint, profile_fingerprint
from privguard.compliance.conditions import evaluate
from privguard.compliance.consent import ConsentSet
from privguard.compliance.decision import Decision, Exclusion, Finding, Inclusion, Outcome, ProfileRef
from privguard.compliance.facts import (
    Context,
    FactValue,
    dataset_facts,
    fhir_context,
    infer_regimes,
    patient_facts,
    purpose_context,
    request_facts,
)
from privguard.compliance.loader import PolicyRef, load_consents, load_request, resolve_policies, shipped_eea
from privguard.compliance.policy import EffectiveRule, PolicySet, Rule, Severity
from privguard.compliance.request import ExportRequest, Patient
from privguard.header.profile import DeidProfile, load_profile

logger = logging.getLogger(__name__)

ENGINE = "privguard"


def fires(rule: Rule, facts: Mapping[str, FactValue]) -> bool:
    """Whether ``rule`` fires: it applies (``when`` true or unknown) and ``require`` is not true."""
    if rule.when is not None and evaluate(rule.when, facts) is False:
        return False
    if rule.require is None:
        return True
    return evaluate(rule.require, facts) is not True


def _finding(er: EffectiveRule, patients: int | None = None) -> Finding:
    r = er.rule
    return Finding(
        rule_id=r.id,
        regime=r.regime.value,
        severity=r.severity,
        citation=r.citation,
        message=r.message,
        checked=r.checks,
        missing=r.missing,
        interpretation=r.interpretation,
        policy=er.policy,
        overridden_by=er.overridden_by,
        patients=patients,
    )


def _engine_finding(rule_id: str, severity: Severity, citation: str, message: str, checked: str) -> Finding:
    return Finding(
        rule_id=rule_id,
        regime=ENGINE,
        severity=severity,
        citation=citation,
        message=message,
        checked=checked,
        policy=ENGINE,
    )


def _engine_findings(
    request: ExportRequest, policies: PolicySet, inferred: frozenset[Regime], included: int
) -> list[Finding]:
    out: list[Finding] = []
    declared = set(request.regimes)
    for regime in sorted(inferred - declared, key=lambda r: r.value):
        out.append(
            _engine_finding(
                "PG-REGIME-NOT-NAMED",
                "review",
                "compliance.md 0 (regime applicability)",
                f"{regime.value.upper()} applies from the requester's details but the request does not "
                "name it; it was checked anyway. Add it to 'regimes'.",
                "regimes inferred from the requester's country and HIPAA status are named",
            )
        )
    regimes = declared | inferred
    if Regime.HIPAA in regimes and request.hipaa is None:
        out.append(
            _engine_finding(
                "PG-HIPAA-PATHWAY",
                "deny",
                "45 CFR 164.514(b), 164.514(e), 164.508, 164.512(i)",
                "HIPAA applies but the request names no disclosure pathway (hipaa.pathway: safe_harbor, "
                "expert_determination, limited_data_set, authorization or irb_waiver).",
                "a HIPAA disclosure pathway is named",
            )
        )
    for regime in sorted(regimes, key=lambda r: r.value):
        if regime is Regime.HIPAA and request.hipaa is None:
            continue
        if not policies.covers(regime):
            out.append(
                _engine_finding(
                    "PG-REGIME-UNCHECKED",
                    "review",
                    "privguard: policy selection",
                    f"No loaded regulation policy checks {regime.value.upper()} for this request (none "
                    "selected, or none ships for its HIPAA pathway); a person must review it or a site "
                    "policy must cover it.",
                    "every applicable regime is checked by a regulation policy",
                )
            )
    if (
        request.requester.country == "US"
        and request.requester.hipaa_covered_entity is None
        and Regime.HIPAA not in regimes
    ):
        out.append(
            _engine_finding(
                "PG-HIPAA-STATUS",
                "review",
                "45 CFR 164.514(a)",
                "The requester is in the US but does not say whether it is a HIPAA covered entity or "
                "business associate (requester.hipaa_covered_entity).",
                "a US requester states its HIPAA status",
            )
        )
    if included == 0:
        out.append(
            _engine_finding(
                "PG-NO-PATIENTS",
                "deny",
                "privguard: inclusion list",
                "Every patient was excluded; there is nothing that may be exported.",
                "at least one patient remains after the consent and eligibility rules",
            )
        )
    return out


def _outcome(findings: Sequence[Finding]) -> Outcome:
    severities = {f.severity for f in findings}
    if "deny" in severities:
        return "deny"
    if "review" in severities:
        return "needs_review"
    return "allow"


def _profile_ref(ref: str, base_dir: Path | None) -> str | Path:
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        path = Path(ref)
        return path if path.is_absolute() or base_dir is None else base_dir / path
    return ref


def check(
    request: ExportRequest | str | Path,
    consents: ConsentSet | str | Path | None = None,
    policies: PolicySet | Sequence[PolicyRef] | None = None,
    *,
    now: dt.datetime | None = None,
    base_dir: str | Path | None = None,
    profile: DeidProfile | None = None,
) -> Decision:
    """Check an export request against consent records and policy profiles.

    Parameters
    ----------
    request
        The export request, or the path of its YAML/JSON file.
    consents
        The consent records, their file path, or None when none are supplied.
    policies
        A built :class:`PolicySet`, or shipped policy names / file paths
        (regulation policies replace the automatic choice; site policies add
        to it), or None to choose the shipped policies from the request.
    now
        Evaluation time (timezone-aware); default: the current UTC time.
    base_dir
        Folder a relative ``deid_profile`` path is resolved against; default:
        the request file's folder, else the current folder.
    profile
        The de-identification profile, if already loaded (otherwise the one
        the request names is loaded).

    Returns
    -------
    Decision
        Outcome, findings with citations and the per-patient inclusion list.

    Raises
    ------
    PolicyError
        An input file or profile is missing or invalid.
    ValueError
        ``now`` is not timezone-aware.
    """
    if isinstance(request, str | Path):
        base_dir = base_dir if base_dir is not None else Path(request).parent
        request = load_request(request)
    if isinstance(consents, str | Path):
        consents = load_consents(consents)
    if now is None:
        now = dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC)
    policy_set = resolve_policies(policies, request)
    if profile is None:
        profile = load_profile(
            _profile_ref(request.deid_profile, Path(base_dir) if base_dir is not None else None)
        )

    inferred = infer_regimes(request, policy_set.tables.eea or shipped_eea())
    ctx = Context(
        request=request,
        profile=profile,
        consents=consents,
        tables=policy_set.tables,
        now=now,
        inferred=inferred,
    )
    facts = request_facts(ctx)
    patient_rules = [er for er in policy_set.rules if er.rule.scope == "patient"]
    request_rules = [er for er in policy_set.rules if er.rule.scope == "request"]

    records = {r.patient: r for r in consents.records} if consents is not None else {}
    duo_ctx, fhir_ctx = purpose_context(ctx), fhir_context(ctx)
    included: list[Patient] = []
    exclusions: list[Exclusion] = []
    excluded_by: dict[str, int] = {}
    withdrawn = 0
    for patient in request.dataset.patients:
        pf = ChainMap(patient_facts(ctx, patient, records.get(patient.id), duo_ctx, fhir_ctx), facts)
        withdrawn += pf["consent.withdrawn"] is True
        fired = [er.rule.id for er in patient_rules if fires(er.rule, pf)]
        if fired:
            exclusions.append(Exclusion(patient=patient.id, rules=tuple(fired)))
            for rid in fired:
                excluded_by[rid] = excluded_by.get(rid, 0) + 1
        else:
            included.append(patient)

    facts |= dataset_facts(ctx, included, withdrawn)
    findings = [_finding(er, excluded_by[er.rule.id]) for er in patient_rules if er.rule.id in excluded_by]
    findings += [_finding(er) for er in request_rules if fires(er.rule, facts)]
    findings += _engine_findings(request, policy_set, inferred, len(included))

    order = {"deny": 0, "review": 1, "exclude": 2, "info": 3}
    findings.sort(key=lambda f: (order[f.severity], f.rule_id))
    decision = Decision(
        outcome=_outcome(findings),
        request_id=request.request_id,
        request_sha256=fingerprint(request),
        evaluated_at=now,
        regimes=tuple(sorted(r.value for r in set(request.regimes) | inferred)),
        policies=policy_set.versions,
        deid_profile=ProfileRef(name=profile.name, sha256=profile_fingerprint(profile)),
        consent_snapshot=consents.snapshot.id if consents is not None else None,
        consents_sha256=fingerprint(consents) if consents is not None else None,
        findings=tuple(findings),
        inclusion=Inclusion(
            requested=len(request.dataset.patients),
            included=tuple(p.id for p in included),
            excluded=tuple(exclusions),
        ),
    )
    logger.info(
        "check: outcome=%s, %d findings, %d of %d patients included",
        decision.outcome,
        len(findings),
        len(included),
        len(request.dataset.patients),
    )
    return decision
