"""Loading requests, consent files and policies; choosing the policies a request needs.

Shipped policies live in ``policies/regulations/`` and are read through
``importlib.resources`` from the installed package. A policy is named by its
shipped name (``gdpr``, ``hipaa-safe-harbor``...) or by a file path. Nothing
falls back to a default when a file is missing or invalid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from privguard.compliance._base import Regime
from privguard.compliance.canonical import fingerprint
from privguard.compliance.consent import ConsentSet
from privguard.compliance.facts import infer_regimes
from privguard.compliance.policy import LoadedPolicy, PolicySet, RegulationPolicy, SitePolicy
from privguard.compliance.request import ExportRequest
from privguard.compliance.tables import CountryList
from privguard.errors import PolicyError
from privguard.policyio import load_model, parse_text, read_document, read_text, validate

logger = logging.getLogger(__name__)

PolicyRef = str | Path


def load_request(path: str | Path) -> ExportRequest:
    """Read and validate an export request (YAML or JSON).

    Raises
    ------
    PolicyError
        The file is missing, not UTF-8, not YAML/JSON, or does not validate
        (the message names the file and the field path).
    """
    return load_model(ExportRequest, path, "export request")


def load_consents(path: str | Path) -> ConsentSet:
    """Read and validate a consent file (YAML or JSON)."""
    return load_model(ConsentSet, path, "consent file")


def _validate_policy(data: object, source: str) -> LoadedPolicy:
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source} must be a mapping at the top level")
    kind = data.get("kind")
    model: type[RegulationPolicy] | type[SitePolicy]
    if kind == "regulation":
        model = RegulationPolicy
    elif kind == "site":
        model = SitePolicy
    else:
        raise PolicyError(f"policy {source} is invalid: kind: must be 'regulation' or 'site'")
    doc = validate(model, data, "policy", source)
    return LoadedPolicy(document=doc, sha256=fingerprint(doc), source=source)


def _regulations_dir() -> Path:
    return Path(str(files("privguard") / "_policies" / "regulations"))


@lru_cache(maxsize=1)
def shipped_policies() -> tuple[LoadedPolicy, ...]:
    """Every policy shipped in ``policies/regulations/``, validated (cached)."""
    folder = _regulations_dir()
    if not folder.is_dir():
        raise PolicyError("the shipped policies folder is missing from the installed package")
    out = []
    for path in sorted(folder.glob("*.yaml")):
        data = parse_text(read_text(path, "policy"), "yaml", "policy", f"'{path.stem}'")
        loaded = _validate_policy(data, f"'{path.stem}'")
        if loaded.document.name != path.stem:
            raise PolicyError(f"policy '{path.stem}' is invalid: name: must match the file name")
        out.append(loaded)
    return tuple(out)


def available_policies() -> list[str]:
    """Names of the shipped policies."""
    return [p.document.name for p in shipped_policies()]


def shipped_rule_ids() -> frozenset[str]:
    """Ids of every shipped rule."""
    return frozenset(r.id for p in shipped_policies() for r in p.document.rules)


def load_policy(ref: PolicyRef) -> LoadedPolicy:
    """Load a policy by shipped name or from a YAML/JSON file path."""
    text = str(ref)
    if isinstance(ref, Path) or text.endswith((".yaml", ".yml", ".json")) or "/" in text:
        path = Path(text)
        return _validate_policy(read_document(path, "policy"), str(path))
    for p in shipped_policies():
        if p.document.name == text:
            return p
    raise PolicyError(f"policy '{text}' not found; available: {', '.join(available_policies())}")


def _shipped_regulation(regime: Regime, pathway: str | None) -> LoadedPolicy | None:
    for p in shipped_policies():
        d = p.document
        if (
            isinstance(d, RegulationPolicy)
            and d.regime is regime
            and (regime is not Regime.HIPAA or d.pathway == pathway)
        ):
            return p
    return None


def shipped_eea() -> CountryList | None:
    """The EEA member list of the shipped GDPR policy (used to infer that GDPR applies)."""
    gdpr = _shipped_regulation(Regime.GDPR, None)
    return (
        gdpr.document.data.eea if gdpr is not None and isinstance(gdpr.document, RegulationPolicy) else None
    )


def default_regulations(request: ExportRequest) -> tuple[LoadedPolicy, ...]:
    """The shipped regulation policies a request needs: its declared and inferred regimes.

    HIPAA is chosen by ``hipaa.pathway``; a pathway without a shipped policy
    (authorization, IRB waiver) or a missing pathway selects nothing, and the
    check reports that HIPAA went unchecked.
    """
    regimes = set(request.regimes) | infer_regimes(request, shipped_eea())
    out = []
    for regime in sorted(regimes, key=lambda r: r.value):
        pathway = request.hipaa.pathway if (regime is Regime.HIPAA and request.hipaa) else None
        if regime is Regime.HIPAA and pathway is None:
            continue
        p = _shipped_regulation(regime, pathway)
        if p is not None:
            out.append(p)
    return tuple(out)


def load_policies(refs: Iterable[PolicyRef] = (), request: ExportRequest | None = None) -> PolicySet:
    """Load policies and merge them into a :class:`PolicySet`.

    Parameters
    ----------
    refs
        Shipped names or file paths. Regulation policies named here replace
        the automatic choice; site policies are applied on top.
    request
        When ``refs`` names no regulation policy, the request's regimes
        choose the shipped ones.

    Raises
    ------
    PolicyError
        A policy is missing or invalid, or no regulation policy can be chosen.
    """
    loaded = [load_policy(r) for r in refs]
    if not any(isinstance(p.document, RegulationPolicy) for p in loaded):
        if request is None:
            raise PolicyError("no regulation policy given (name one, e.g. gdpr, or pass the request)")
        loaded = [*default_regulations(request), *loaded]
    return PolicySet.build(tuple(loaded), known_ids=shipped_rule_ids())


def resolve_policies(policies: PolicySet | Sequence[PolicyRef] | None, request: ExportRequest) -> PolicySet:
    """Accept what :func:`privguard.compliance.check` accepts for ``policies``."""
    if isinstance(policies, PolicySet):
        return policies
    return load_policies(policies or (), request)
