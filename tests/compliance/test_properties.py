"""Property tests (hypothesis).

* Removing information from a request never turns a ``deny`` into ``allow``.
  "Information" is any key of the request or any element of its lists, except
  what defines the export's scope rather than describes it: the items of
  ``regimes``, the patients and studies of ``dataset``, and the exporting
  ``sources`` with their patients and regimes (dropping a patient or a site
  changes what is exported; it is not missing information). So is
  ``dataset.allow_patient_exclusion``: the requester's choice between an
  all-or-nothing and a partial export (default: partial, as issue 12 sets). A request that no
  longer validates is rejected, which is not an ``allow`` either. The scrub report (``pixels``) is
  information like any other: dropping a report that found text leaves the check without evidence on
  burned-in text, which HIPAA-SH-PIXEL-UNVERIFIED reviews (docs/compliance.md, HIPAA Safe Harbor).
  ``PRIVGUARD_PROPERTY_EXAMPLES`` (environment) raises ``max_examples`` for a longer search.
* The canonical hash depends on the meaning, not on the file's form.
* DUO: broader permissions cover at least what narrower ones cover, and
  adding a modifier never lifts a restriction.
* Every shipped rule evaluates to fire/not-fire for any assignment of its facts.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from privguard.compliance import ExportRequest
from privguard.compliance.canonical import fingerprint
from privguard.compliance.duo import ConsentTerm, DuoCode, PurposeContext, match
from privguard.compliance.engine import fires
from privguard.compliance.facts import FACTS, FactType
from privguard.compliance.loader import shipped_policies
from privguard.policyio import parse_text

from .support import decide, drop, example
from .test_scenarios import SCENARIOS, Scenario, _consents_for

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PRIVGUARD_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_SCOPE = ("regimes.", "dataset.patients.")


def _paths(d: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(d, dict):
        items: list[tuple[str, Any]] = list(d.items())
    elif isinstance(d, list):
        items = [(str(i), v) for i, v in enumerate(d)]
    else:
        return
    for key, value in items:
        path = f"{prefix}{key}"
        scope_item = path in ("sources", "dataset.allow_patient_exclusion") or (
            isinstance(d, list)
            and (
                prefix in ("regimes.", "sources.")
                or (prefix.startswith("dataset.patients.") and (prefix.count(".") in (2, 4)))
                or (prefix.startswith("sources.") and prefix.endswith((".patients.", ".regimes.")))
            )
        )
        if not scope_item:
            yield path
        yield from _paths(value, path + ".")


def _outcome(s: Scenario, request: dict[str, Any], consents: dict[str, Any] | None) -> str:
    try:
        d = decide(
            request,
            consents,
            policies=list(s.policies) or None,
            profile=s.profile() if s.profile else None,
            now=s.extra.get("now", dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)),
        )
    except ValidationError:
        return "rejected"
    return d.outcome


@functools.cache
def _optional_paths(scenario_id: str) -> tuple[str, ...]:
    """Paths whose removal alone leaves a valid request (so the check runs, instead of rejecting it)."""
    s = next(x for x in SCENARIOS if x.id == scenario_id)
    request, consents = example(s.base)
    s.edit(request, consents)
    keep = []
    for path in sorted(_paths(request)):
        reduced = json.loads(json.dumps(request, default=str))
        drop(reduced, path)
        try:
            ExportRequest.model_validate(reduced)
        except ValidationError:
            continue
        keep.append(path)
    return tuple(keep)


@st.composite
def reduced_requests(draw: st.DrawFn) -> tuple[Scenario, dict[str, Any], dict[str, Any] | None, list[str]]:
    s = draw(st.sampled_from(SCENARIOS))
    request, consents = example(s.base)
    s.edit(request, consents)
    # Mostly optional fields (the interesting case), sometimes any field (a rejection is fine too).
    pool = draw(
        st.sampled_from([_optional_paths(s.id), _optional_paths(s.id), tuple(sorted(_paths(request)))])
    )
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    return s, request, consents, chosen


@PROPERTY_SETTINGS
@given(reduced_requests())
def test_removing_information_never_turns_deny_into_allow(
    case: tuple[Scenario, dict[str, Any], dict[str, Any] | None, list[str]],
) -> None:
    s, request, consents, chosen = case
    consents = _consents_for(s, request, consents)
    before = _outcome(s, request, consents)
    reduced = json.loads(json.dumps(request, default=str))
    # Remove deepest paths first so list indices stay valid.
    for path in sorted(chosen, key=lambda p: (-p.count("."), p), reverse=False):
        try:
            drop(reduced, path)
        except (KeyError, IndexError, TypeError):
            continue  # an ancestor was already removed
    after = _outcome(s, reduced, consents)
    assert not (before == "deny" and after == "allow"), (s.id, chosen)


@pytest.mark.parametrize("chosen", [["pixels"], ["dataset.patients.0.age", "pixels"]])
def test_dropping_a_scrub_report_that_found_text_is_not_an_allow(chosen: list[str]) -> None:
    """The counterexample hypothesis found (issue 12): without the report, the ultrasound study's burned-in
    text is unverified (HIPAA-SH-PIXEL-UNVERIFIED, review), not passed on the profile's OCR mode."""
    s = next(x for x in SCENARIOS if x.id == "hipaa-sh-scrub-report-text-remains")
    request, consents = example(s.base)
    s.edit(request, consents)
    assert _outcome(s, request, consents) == "deny"
    for path in chosen:
        drop(request, path)
    assert _outcome(s, request, consents) == "needs_review"


def test_scope_paths_are_not_removed() -> None:
    request, _ = example("gdpr")
    paths = set(_paths(request))
    assert "regimes.0" not in paths and "dataset.patients.0" not in paths
    assert "dataset.patients.0.studies.0" not in paths
    assert {
        "dataset.patients.0.age",
        "dataset.patients.0.studies.0.body_part",
        "transfers.0",
        "ethics",
    } <= paths


def _shuffled(d: Any, rng: random.Random) -> Any:
    if isinstance(d, dict):
        keys = list(d)
        rng.shuffle(keys)
        return {k: _shuffled(d[k], rng) for k in keys}
    if isinstance(d, list):
        return [_shuffled(v, rng) for v in d]
    return d


@PROPERTY_SETTINGS
@given(st.sampled_from(["gdpr", "hipaa", "pipl"]), st.integers(min_value=0, max_value=2**32 - 1))
def test_hash_depends_on_meaning_not_form(base: str, seed: int) -> None:
    request, _ = example(base)
    reference = fingerprint(ExportRequest.model_validate(request))
    shuffled = _shuffled(json.loads(json.dumps(request, default=str)), random.Random(seed))
    as_json = parse_text(json.dumps(shuffled, indent=seed % 4 or None), "json", "request", "t")
    as_yaml = parse_text(yaml.safe_dump(shuffled, sort_keys=False), "yaml", "request", "t")
    assert fingerprint(ExportRequest.model_validate(as_json)) == reference
    assert fingerprint(ExportRequest.model_validate(as_yaml)) == reference


def _contexts() -> st.SearchStrategy[PurposeContext]:
    diseases = st.sampled_from(["MONDO:1", "MONDO:2", "MONDO:3"])
    return st.builds(
        PurposeContext,
        primary=st.sampled_from([DuoCode.GRU, DuoCode.HMB, DuoCode.DS, DuoCode.POA]),
        disease=diseases,
        disease_ancestors=st.frozensets(diseases, max_size=2),
        category=st.sampled_from(["research", "public_health", "health_care_operations", "clinical_care"]),
        commercial=st.none() | st.booleans(),
        for_profit_recipient=st.booleans(),
        methods_development=st.none() | st.booleans(),
        genetic_study=st.none() | st.booleans(),
        research_type=st.none() | st.sampled_from(["imaging", "genomics"]),
        agreements=st.frozensets(st.sampled_from([DuoCode.COL, DuoCode.PUB, DuoCode.RTN, DuoCode.MOR])),
        ethics_approval=st.booleans(),
        dac_approval=st.booleans(),
        recipient_country=st.sampled_from(["DE", "US", "CN"]),
        now=st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2035, 1, 1)),
    )


_MODIFIERS = [
    ConsentTerm(code=DuoCode.NCU),
    ConsentTerm(code=DuoCode.NPU),
    ConsentTerm(code=DuoCode.IRB),
    ConsentTerm(code=DuoCode.GS, regions=("DE",)),
    ConsentTerm(code=DuoCode.TS, months=24),
    ConsentTerm(code=DuoCode.NMDS),
    ConsentTerm(code=DuoCode.PUB),
    ConsentTerm(code=DuoCode.GSO),
]


@PROPERTY_SETTINGS
@given(
    _contexts(),
    st.lists(st.sampled_from(_MODIFIERS), unique_by=lambda m: m.code, max_size=4),
    st.sampled_from(_MODIFIERS),
)
def test_duo_broader_permissions_cover_more_and_modifiers_only_restrict(
    ctx: PurposeContext, modifiers: list[ConsentTerm], extra: ConsentTerm
) -> None:
    given = dt.date(2024, 1, 1)
    mods = tuple(modifiers)
    ds = ConsentTerm(code=DuoCode.DS, diseases=("MONDO:1",))
    order = [ConsentTerm(code=DuoCode.NRES), ConsentTerm(code=DuoCode.GRU), ConsentTerm(code=DuoCode.HMB), ds]
    covered = [match(p, mods, ctx, given).covers_purpose for p in order]
    # NRES >= GRU >= HMB >= DS(x): a narrower permission never covers what a broader one does not.
    for broader, narrower in itertools.pairwise(covered):
        assert broader or not narrower
    if extra.code not in {m.code for m in mods}:
        for p in order:
            before, after = match(p, mods, ctx, given), match(p, (*mods, extra), ctx, given)
            assert before.unmet <= after.unmet
            assert after.covers_purpose <= before.covers_purpose or extra.code is DuoCode.CC


def _fact_values(name: str) -> st.SearchStrategy[Any]:
    spec = FACTS[name]
    values = sorted(spec.values) if spec.values else ["x", "y"]
    base: st.SearchStrategy[Any]
    if spec.type is FactType.BOOL:
        base = st.booleans()
    elif spec.type is FactType.INT:
        base = st.integers(min_value=0, max_value=2_000_000)
    elif spec.type is FactType.STR:
        base = st.sampled_from(values)
    else:
        base = st.frozensets(st.sampled_from(values))
    return st.none() | base


_RULES = [r for p in shipped_policies() for r in p.document.rules]


@PROPERTY_SETTINGS
@given(st.fixed_dictionaries({name: _fact_values(name) for name in FACTS}))
def test_every_shipped_rule_evaluates_for_any_facts(facts: dict[str, Any]) -> None:
    for rule in _RULES:
        assert fires(rule, facts) in (True, False)
