"""Policy profiles: declarative rules per regime, site overlays, and merging them.

A *regulation* policy (``kind: regulation``) holds the rules of one regime
(and, for HIPAA, one pathway) plus the versioned data tables they need. A
*site* policy (``kind: site``) adds rules, overrides shipped rules by id
(severity, message, citation) and may replace data tables with newer ones.

Every rule has an id, a regime, a severity, a citation, a message, a
description of what it checks, and a condition (conditions.py). Request-scope
rules produce findings with severity ``deny``, ``review`` or ``info``;
patient-scope rules have severity ``exclude`` and take the patient out of
the inclusion list.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from privguard.compliance._base import Model, Regime, RuleId, Sha256Hex, unique
from privguard.compliance.conditions import Condition, facts_of
from privguard.compliance.facts import FACTS
from privguard.compliance.tables import DataTables
from privguard.errors import PolicyError

logger = logging.getLogger(__name__)

Severity = Literal["deny", "review", "info", "exclude"]
Pathway = Literal["safe_harbor", "expert_determination", "limited_data_set", "authorization", "irb_waiver"]
PolicyName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class Rule(Model):
    """One declarative rule."""

    id: RuleId
    regime: Regime
    scope: Literal["request", "patient"] = Field(
        default="request", description="patient: evaluated per patient."
    )
    severity: Severity = Field(description="deny, review or info (request scope); exclude (patient scope).")
    citation: str = Field(
        min_length=3, max_length=300, description="Article/section, as compliance.md cites it."
    )
    message: str = Field(
        min_length=3, max_length=1000, description="What is wrong and what to do; no values."
    )
    checks: str = Field(min_length=3, max_length=300, description="What the rule checked.")
    missing: tuple[str, ...] = Field(default=(), description="Request fields that would satisfy the rule.")
    interpretation: bool = Field(
        default=False, description="The rule rests on an Interpretation in compliance.md."
    )
    show: tuple[str, ...] = Field(
        default=(),
        description="Request or dataset facts whose values the finding shows (e.g. the transfer tool relied "
        "on); never patient facts.",
    )
    when: Condition | None = Field(default=None, description="When the rule applies (default: always).")
    require: Condition | None = Field(
        default=None, description="What must hold (default: the rule fires when it applies)."
    )

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if (self.scope == "patient") != (self.severity == "exclude"):
            raise ValueError(
                "severity 'exclude' is for scope 'patient', and scope 'patient' needs severity 'exclude'"
            )
        if self.when is None and self.require is None:
            raise ValueError("a rule needs 'when', 'require' or both")
        for name in self.show:
            if name not in FACTS or FACTS[name].phase == "patient":
                raise ValueError(
                    "show: name request or dataset facts (see the fact list in docs/compliance.md)"
                )
        allowed = {"request", "dataset"} if self.scope == "request" else {"request", "patient"}
        for cond in (self.when, self.require):
            if cond is None:
                continue
            for name in facts_of(cond):
                if FACTS[name].phase not in allowed:
                    raise ValueError(f"a {self.scope}-scope rule cannot test {FACTS[name].phase} facts")
        return self


class RegulationPolicy(Model):
    """The rules of one regime (and HIPAA pathway), as shipped in policies/regulations/."""

    schema_version: Literal[1]
    kind: Literal["regulation"]
    name: PolicyName
    title: str = Field(min_length=3)
    regime: Regime
    pathway: Pathway | None = Field(default=None, description="HIPAA only: the pathway these rules check.")
    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")
    as_of: dt.date = Field(description="Date up to which the facts behind the rules were confirmed.")
    sources: tuple[str, ...] = Field(default=(), description="Where the rules come from.")
    data: DataTables = DataTables()
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> RegulationPolicy:
        if (self.regime is Regime.HIPAA) != (self.pathway is not None):
            raise ValueError("pathway: required for a HIPAA policy and only allowed there")
        if not unique(tuple(r.id for r in self.rules)):
            raise ValueError("rules: a rule id is repeated")
        if any(r.regime is not self.regime for r in self.rules):
            raise ValueError("rules: every rule's regime must be the policy's regime")
        return self


class RuleOverride(Model):
    """A site's change to a shipped rule."""

    id: RuleId
    severity: Severity | None = None
    message: str | None = Field(default=None, min_length=3, max_length=1000)
    citation: str | None = Field(default=None, min_length=3, max_length=300)
    reason: str = Field(
        min_length=3, max_length=500, description="Why the site changes the rule (for the record)."
    )

    @model_validator(mode="after")
    def _something(self) -> RuleOverride:
        if self.severity is None and self.message is None and self.citation is None:
            raise ValueError("an override changes at least one of severity, message, citation")
        return self


class SitePolicy(Model):
    """A site's additions and overrides."""

    schema_version: Literal[1]
    kind: Literal["site"]
    name: PolicyName
    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")
    as_of: dt.date
    description: str = ""
    overrides: tuple[RuleOverride, ...] = ()
    rules: tuple[Rule, ...] = ()
    data: DataTables = DataTables()

    @model_validator(mode="after")
    def _check(self) -> SitePolicy:
        ids = tuple(o.id for o in self.overrides) + tuple(r.id for r in self.rules)
        if not unique(ids):
            raise ValueError("a rule id appears twice among overrides and rules")
        if not (self.overrides or self.rules or any(self.data.model_dump(exclude_none=True).values())):
            raise ValueError("a site policy needs overrides, rules or data")
        return self


PolicyDocument = Annotated[RegulationPolicy | SitePolicy, Field(discriminator="kind")]


class PolicyVersion(Model):
    """Which policy (and exact content) a decision used."""

    name: str
    kind: Literal["regulation", "site"]
    regime: Regime | None
    pathway: Pathway | None
    version: str
    as_of: dt.date
    sha256: Sha256Hex


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy document with its fingerprint and where it came from."""

    document: RegulationPolicy | SitePolicy
    sha256: str
    source: str

    @property
    def version(self) -> PolicyVersion:
        d = self.document
        return PolicyVersion(
            name=d.name,
            kind=d.kind,
            regime=d.regime if isinstance(d, RegulationPolicy) else None,
            pathway=d.pathway if isinstance(d, RegulationPolicy) else None,
            version=d.version,
            as_of=d.as_of,
            sha256=self.sha256,
        )


@dataclass(frozen=True)
class EffectiveRule:
    """A rule after site overrides, with where it came from."""

    rule: Rule
    policy: str
    overridden_by: str | None = None


def _apply(rule: Rule, o: RuleOverride, source: str, index: int) -> Rule:
    changes = {"severity": o.severity, "message": o.message, "citation": o.citation}
    data = rule.model_dump(by_alias=True, exclude_none=True) | {
        k: v for k, v in changes.items() if v is not None
    }
    try:
        return Rule.model_validate(data)
    except ValidationError:
        raise PolicyError(
            f"policy {source} is invalid: overrides.{index}.severity: "
            "'exclude' is for patient-scope rules only"
        ) from None


@dataclass(frozen=True)
class PolicySet:
    """The policies of one check: regulations, then site overlays, merged.

    Build it with :func:`PolicySet.build` (or the loader), which validates
    that ids are unique, overrides name known rules and tables do not clash.
    """

    policies: tuple[LoadedPolicy, ...]
    rules: tuple[EffectiveRule, ...] = field(default=())
    tables: DataTables = field(default_factory=DataTables)

    @property
    def versions(self) -> tuple[PolicyVersion, ...]:
        return tuple(p.version for p in self.policies)

    @property
    def regulations(self) -> tuple[RegulationPolicy, ...]:
        return tuple(p.document for p in self.policies if isinstance(p.document, RegulationPolicy))

    @property
    def sites(self) -> tuple[SitePolicy, ...]:
        return tuple(p.document for p in self.policies if isinstance(p.document, SitePolicy))

    @classmethod
    def build(cls, policies: tuple[LoadedPolicy, ...], known_ids: frozenset[str] = frozenset()) -> PolicySet:
        """Merge regulations and site overlays.

        Parameters
        ----------
        policies
            Loaded policies, in order. Site policies apply after all regulations.
        known_ids
            Ids of every shipped rule: a site may override a rule that is not
            loaded for this request, but not an id that exists nowhere.

        Raises
        ------
        PolicyError
            Duplicate rule ids, an override of an unknown rule, clashing tables.
        """
        regs = [(p, p.document) for p in policies if isinstance(p.document, RegulationPolicy)]
        sites = [(p, p.document) for p in policies if isinstance(p.document, SitePolicy)]
        if not unique(tuple(p.document.name for p in policies)):
            raise PolicyError("the same policy is given twice")
        rules: dict[str, EffectiveRule] = {}
        tables: dict[str, object] = {}
        for p, reg in regs:
            for r in reg.rules:
                if r.id in rules:
                    raise PolicyError(f"policy {p.source}: rule id {r.id} is also defined by another policy")
                rules[r.id] = EffectiveRule(r, reg.name)
            for name, table in reg.data:
                if table is None:
                    continue
                if name in tables and tables[name] != table:
                    raise PolicyError(
                        f"policy {p.source}: data.{name} differs from another policy's; use a site policy"
                    )
                tables[name] = table
        for p, site in sites:
            for i, o in enumerate(site.overrides):
                if o.id not in rules:
                    if o.id in known_ids:
                        continue  # a shipped rule of a policy not used for this request
                    raise PolicyError(
                        f"policy {p.source} is invalid: overrides.{i}.id: no shipped rule has this id"
                    )
                rules[o.id] = EffectiveRule(
                    _apply(rules[o.id].rule, o, p.source, i), rules[o.id].policy, site.name
                )
            for i, r in enumerate(site.rules):
                if r.id in rules or r.id in known_ids:
                    raise PolicyError(
                        f"policy {p.source} is invalid: rules.{i}.id: "
                        "a shipped rule has this id; use overrides"
                    )
                rules[r.id] = EffectiveRule(r, site.name)
            for name, table in site.data:
                if table is not None:
                    tables[name] = table
        merged = DataTables.model_validate(tables)
        logger.debug("policy set: %d policies, %d rules", len(policies), len(rules))
        return cls(policies=policies, rules=tuple(rules.values()), tables=merged)

    def covers(self, regime: Regime) -> bool:
        """Whether a regulation policy of ``regime`` is loaded."""
        return any(d.regime is regime for d in self.regulations)
