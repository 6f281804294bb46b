"""The policy check: evaluate rules over facts and decide allow, deny or needs_review.

Order of work (each step is small and PHI-free):

1. validate inputs and load the de-identification profile the request names;
   a multi-site request (``sources``) is checked once per site, then combined
   (the worst outcome; every finding names its site);
2. compute request facts (request, profile compiled into residual
   identifiers, policy tables, evaluation time);
3. per patient (listed inline or streamed from tables, see cohort.py):
   compute patient facts and apply patient-scope rules, once per distinct
   combination of facts; a rule that fires excludes the patient (by id, with
   the rule ids);
4. compute dataset facts over the patients left and apply request-scope rules;
   a deny or review rule that applied and held is a ``pass`` finding (the
   reasons the officer signs);
5. add the engine's own findings (regimes not named or not checked, HIPAA
   pathway missing, nobody left to export, an all-or-nothing export with
   exclusions) and derive the outcome: any ``deny`` finding denies, else any
   ``review`` finding needs review, else allow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import ChainMap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from privguard.compliance._base import Regime
from privguard.compliance.canonical import fingerprint, profile_fingerprint
from privguard.compliance.cohort import Cohort, ConsentRow
from privguard.compliance.conditions import evaluate, facts_of
from privguard.compliance.consent import ConsentSet
from privguard.compliance.decision import (
    Decision,
    Exclusion,
    Finding,
    FindingSeverity,
    Inclusion,
    Outcome,
    ProfileRef,
    SourceDecision,
)
from privguard.compliance.facts import (
    FACTS,
    Context,
    DatasetFacts,
    FactValue,
    PatientFacts,
    infer_regimes,
    permission_of,
    request_facts,
)
from privguard.compliance.loader import PolicyRef, load_consents, load_request, resolve_policies, shipped_eea
from privguard.compliance.policy import EffectiveRule, PolicySet, PolicyVersion, Rule
from privguard.compliance.request import ExportRequest, Source
from privguard.header.profile import DeidProfile, load_profile

logger = logging.getLogger(__name__)

ENGINE = "privguard"


Status = Literal["fire", "pass", "n/a"]


class Group(NamedTuple):
    """What the patient rules decided for patients with the same facts."""

    age: int | None
    fired: tuple[str, ...]
    passed: tuple[str, ...]
    withdrawn: bool
    covers: bool
    permission: str | None


def status(rule: Rule, facts: Mapping[str, FactValue]) -> Status:
    """Whether ``rule`` fires, passes or does not apply.

    It fires when it applies (``when`` true or unknown) and ``require`` is not
    true (unknown never passes). It passes only on certain knowledge: ``when``
    true (or absent) and ``require`` true, or, for a rule without
    ``require``, ``when`` false (what it looks for is known to be absent).
    """
    w = True if rule.when is None else evaluate(rule.when, facts)
    if rule.require is None:
        return "pass" if w is False else "fire"
    if w is False:
        return "n/a"
    r = evaluate(rule.require, facts)
    if r is True:
        return "pass" if w is True else "n/a"
    return "fire"


def fires(rule: Rule, facts: Mapping[str, FactValue]) -> bool:
    """Whether ``rule`` fires: it applies (``when`` true or unknown) and ``require`` is not true."""
    return status(rule, facts) == "fire"


def _show(value: FactValue) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset):
        return ", ".join(sorted(value)) or "none"
    return str(value)


def _finding(
    er: EffectiveRule,
    patients: int | None = None,
    facts: Mapping[str, FactValue] | None = None,
    *,
    passed: bool = False,
) -> Finding:
    r = er.rule
    details = tuple(f"{n} = {_show(facts.get(n))}" for n in r.show) if facts is not None else ()
    return Finding(
        rule_id=r.id,
        regime=r.regime.value,
        severity="pass" if passed else r.severity,
        citation=r.citation,
        message=f"Passed: {r.checks}." if passed else r.message,
        checked=r.checks,
        missing=() if passed else r.missing,
        interpretation=r.interpretation,
        policy=er.policy,
        overridden_by=er.overridden_by,
        patients=patients,
        details=details,
    )


def _engine_finding(
    rule_id: str, severity: FindingSeverity, citation: str, message: str, checked: str
) -> Finding:
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
    request: ExportRequest, policies: PolicySet, inferred: frozenset[Regime], included: int, excluded: int
) -> list[Finding]:
    out: list[Finding] = []
    if not request.dataset.allow_patient_exclusion and excluded:
        out.append(
            _engine_finding(
                "PG-ALL-OR-NOTHING",
                "deny",
                "privguard: dataset.allow_patient_exclusion",
                "The request is all or nothing (dataset.allow_patient_exclusion: false), and some patients "
                "would be excluded; see the excluded patients and the rules that excluded them.",
                "no patient is excluded from an all-or-nothing export",
            )
        )
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
    consents_dir: Path | None = None
    if isinstance(consents, str | Path):
        consents_dir = Path(consents).parent
        consents = load_consents(consents)
    if now is None:
        now = dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC)
    if profile is None:
        profile = load_profile(
            _profile_ref(request.deid_profile, Path(base_dir) if base_dir is not None else None)
        )
    folders = (
        Path(base_dir) if base_dir is not None else None,
        Path(consents_dir)
        if consents_dir is not None
        else (Path(base_dir) if base_dir is not None else None),
    )
    if request.sources:
        return _check_sources(request, consents, policies, profile, now, folders)
    return _check_one(request, consents, resolve_policies(policies, request), profile, now, folders)


def _source_request(request: ExportRequest, src: Source) -> ExportRequest:
    """The request as one source sends it: the site's own regime facts (never the request's: a fact
    a site leaves out is missing, not inherited), the site's patients."""
    mine = set(src.patients)
    assert request.dataset.patients is not None  # validated: sources need an inline dataset
    update: dict[str, object] = {
        "requester": src.requester,
        "regimes": src.regimes,
        "gdpr": src.gdpr,
        "hipaa": src.hipaa,
        "pipl": src.pipl,
        "transfers": src.transfers,
        "pseudonymisation": src.pseudonymisation,
        "dataset": request.dataset.model_copy(
            update={"patients": tuple(p for p in request.dataset.patients if p.id in mine)}
        ),
        "sources": (),
    }
    return ExportRequest.model_validate(request.model_dump() | update)


def _check_sources(
    request: ExportRequest,
    consents: ConsentSet | None,
    policies: PolicySet | Sequence[PolicyRef] | None,
    profile: DeidProfile,
    now: dt.datetime,
    folders: tuple[Path | None, Path | None],
) -> Decision:
    """Decide each source on its own, then the request as a whole (the worst outcome)."""
    parts: list[tuple[Source, Decision]] = []
    for src in request.sources:
        sub = _source_request(request, src)
        parts.append((src, _check_one(sub, consents, resolve_policies(policies, sub), profile, now, folders)))
    order = {"deny": 0, "review": 1, "exclude": 2, "info": 3, "pass": 4}
    findings = sorted(
        (f.model_copy(update={"source": src.id}) for src, d in parts for f in d.findings),
        key=lambda f: (order[f.severity], f.rule_id, f.source or ""),
    )
    versions: dict[tuple[str, str], PolicyVersion] = {}
    for _, d in parts:
        for v in d.policies:
            versions.setdefault((v.name, v.sha256), v)
    first = parts[0][1]
    decision = Decision(
        outcome=_outcome(findings),
        request_id=request.request_id,
        request_sha256=fingerprint(request),
        evaluated_at=now,
        regimes=tuple(sorted({r for _, d in parts for r in d.regimes})),
        policies=tuple(versions.values()),
        deid_profile=first.deid_profile,
        consent_snapshot=first.consent_snapshot,
        consents_sha256=first.consents_sha256,
        consent_table_sha256=first.consent_table_sha256,
        findings=tuple(findings),
        inclusion=Inclusion(
            requested=sum(d.inclusion.requested for _, d in parts),
            included=tuple(pid for _, d in parts for pid in d.inclusion.included),
            excluded=tuple(e for _, d in parts for e in d.inclusion.excluded),
        ),
        sources=tuple(
            SourceDecision(
                id=src.id,
                outcome=d.outcome,
                regimes=d.regimes,
                policies=tuple(v.name for v in d.policies),
                requested=d.inclusion.requested,
                included=len(d.inclusion.included),
                deny=tuple(sorted(d.rule_ids("deny"))),
                review=tuple(sorted(d.rule_ids("review"))),
            )
            for src, d in parts
        ),
    )
    logger.info(
        "check: %d sources, outcome=%s (%s)",
        len(parts),
        decision.outcome,
        ", ".join(f"{s.id}: {s.outcome}" for s in decision.sources),
    )
    return decision


def _check_one(
    request: ExportRequest,
    consents: ConsentSet | None,
    policy_set: PolicySet,
    profile: DeidProfile,
    now: dt.datetime,
    folders: tuple[Path | None, Path | None],
) -> Decision:
    """Check a single-source request (see :func:`check`)."""
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
    names = sorted(
        {
            n
            for er in patient_rules
            for cond in (er.rule.when, er.rule.require)
            if cond is not None
            for n in facts_of(cond)
            if FACTS[n].phase == "patient"
        }
    )

    cohort = Cohort(request, consents, *folders)
    builder = PatientFacts(ctx)
    acc = DatasetFacts(ctx, cohort.kinds)

    def judge(pf: Mapping[str, FactValue]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        key = tuple(pf[n] for n in names)
        hit = memo.get(key)
        if hit is None:
            merged = ChainMap(dict(pf), facts)
            states = [(er.rule.id, status(er.rule, merged)) for er in patient_rules]
            hit = memo[key] = (
                tuple(rid for rid, st in states if st == "fire"),
                tuple(rid for rid, st in states if st == "pass"),
            )
        return hit

    # Patients with the same patient facts get the same answer: each combination is evaluated once,
    # and counted by group (age, consent terms and dates) rather than patient by patient.
    memo: dict[tuple[FactValue, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    rows: dict[tuple[int | None, int], list[Any]] = {}
    groups: dict[Group, list[Any]] = {}
    included: list[str] = []
    exclusions: list[tuple[str, tuple[str, ...]]] = []
    add = acc.add
    for patient, record in cohort:
        entry: list[Any] | None = None
        if record is None or type(record) is ConsentRow:
            key = (patient.age, id(record))  # table consents are shared objects (see read_consents)
            entry = rows.get(key)
        if entry is None:
            pf = builder.of(patient.age, record)
            fired, passed = judge(pf)
            group = Group(
                patient.age,
                fired,
                passed,
                pf["consent.withdrawn"] is True,
                pf["consent.covers_purpose"] is True,
                permission_of(record),
            )
            entry = groups.setdefault(group, [group, 0])
            if record is None or type(record) is ConsentRow:
                rows[key] = entry
        entry[1] += 1
        fired = entry[0].fired
        if fired:
            exclusions.append((patient.id, fired))
        else:
            included.append(patient.id)
            add(patient)

    excluded_by: dict[str, int] = {}
    passed_by: dict[str, int] = {}
    for group, n in groups.values():
        acc.requested += n
        acc.withdrawn += group.withdrawn * n
        for rid in group.fired:
            excluded_by[rid] = excluded_by.get(rid, 0) + n
        if not group.fired:
            acc.add_group(group.age, group.permission, group.covers, n)
            for rid in group.passed:
                passed_by[rid] = passed_by.get(rid, 0) + n

    facts |= acc.facts()
    findings = [_finding(er, excluded_by[er.rule.id]) for er in patient_rules if er.rule.id in excluded_by]
    findings += [
        _finding(er, passed_by[er.rule.id], passed=True) for er in patient_rules if er.rule.id in passed_by
    ]
    for er in request_rules:
        st = status(er.rule, facts)
        if st == "fire":
            findings.append(_finding(er, facts=facts))
        elif st == "pass" and er.rule.severity in ("deny", "review"):
            findings.append(_finding(er, facts=facts, passed=True))
    findings += _engine_findings(request, policy_set, inferred, len(included), len(exclusions))

    order = {"deny": 0, "review": 1, "exclude": 2, "info": 3, "pass": 4}
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
        patient_table_sha256=cohort.patient_table.sha256 if cohort.patient_table else None,
        consent_table_sha256=cohort.consent_table.sha256 if cohort.consent_table else None,
        findings=tuple(findings),
        inclusion=Inclusion(
            requested=acc.requested,
            included=tuple(included),
            excluded=tuple(Exclusion(patient=pid, rules=rules) for pid, rules in exclusions),
        ),
    )
    logger.info(
        "check: outcome=%s, %d findings, %d of %d patients included",
        decision.outcome,
        len(findings),
        len(included),
        acc.requested,
    )
    return decision
