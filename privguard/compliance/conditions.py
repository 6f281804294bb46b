"""The condition vocabulary of policy rules, and its three-valued evaluation.

A condition is one of::

    {fact: NAME, op: OP, value: V}     a test of one fact
    {all: [C, ...]}                    every C holds
    {any: [C, ...]}                    at least one C holds
    {not: C}                           C does not hold

Operators, by fact type:

=========  ==================================================================
bool       ``is_true``, ``is_false``
int        ``eq``, ``ne``, ``gt``, ``ge``, ``lt``, ``le`` (value: an integer)
str        ``eq``, ``ne`` (value: a string), ``in``, ``not_in`` (value: a list)
set        ``contains`` (value: a string), ``intersects``, ``disjoint``,
           ``subset_of`` (value: a list), ``empty``, ``not_empty``
any        ``present``, ``absent`` (whether the fact is known)
=========  ==================================================================

Facts may be unknown (``None``). Evaluation is three-valued (Kleene): a test
of an unknown fact is unknown, except ``present``/``absent``; ``all`` is false
if any part is false, ``any`` is true if any part is true, ``not`` keeps
unknown unknown. A rule applies when its ``when`` is true *or unknown*, and
fires when its ``require`` is false *or unknown*: unknown never passes a check.

There is no ``eval()``: the vocabulary is closed and checked when a policy is
loaded (unknown facts, operators that do not fit the fact's type, values
outside the fact's enumeration are all errors).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from privguard.compliance._base import Model
from privguard.compliance.facts import FACTS, FactType, FactValue

Op = Literal[
    "is_true",
    "is_false",
    "present",
    "absent",
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "ge",
    "lt",
    "le",
    "contains",
    "intersects",
    "disjoint",
    "subset_of",
    "empty",
    "not_empty",
]

_NO_VALUE = frozenset({"is_true", "is_false", "present", "absent", "empty", "not_empty"})
_OPS: dict[FactType, frozenset[str]] = {
    FactType.BOOL: frozenset({"is_true", "is_false"}),
    FactType.INT: frozenset({"eq", "ne", "gt", "ge", "lt", "le"}),
    FactType.STR: frozenset({"eq", "ne", "in", "not_in"}),
    FactType.SET: frozenset({"contains", "intersects", "disjoint", "subset_of", "empty", "not_empty"}),
}
_ANY_TYPE = frozenset({"present", "absent"})


class Test(Model):
    """A test of one fact."""

    fact: str
    op: Op
    value: bool | int | str | tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _fits(self) -> Test:
        spec = FACTS.get(self.fact)
        if spec is None:
            raise ValueError("unknown fact (see the fact list in docs/compliance.md)")
        if self.op not in _OPS[spec.type] | _ANY_TYPE:
            raise ValueError(f"operator '{self.op}' does not apply to a {spec.type.value} fact")
        v = self.value
        if self.op in _NO_VALUE:
            if v is not None:
                raise ValueError(f"operator '{self.op}' takes no value")
            return self
        if self.op in ("in", "not_in", "intersects", "disjoint", "subset_of"):
            if not isinstance(v, tuple) or not v:
                raise ValueError(f"operator '{self.op}' needs a non-empty list value")
            items: tuple[str, ...] = v
        elif spec.type is FactType.INT:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"operator '{self.op}' on an int fact needs an integer value")
            return self
        else:
            if not isinstance(v, str):
                raise ValueError(f"operator '{self.op}' needs a string value")
            items = (v,)
        if spec.values is not None and not set(items) <= spec.values:
            raise ValueError("value is not one this fact can take (see the fact list in docs/compliance.md)")
        return self


class AllOf(Model):
    """Every condition holds."""

    all: tuple[Condition, ...] = Field(min_length=1)


class AnyOf(Model):
    """At least one condition holds."""

    any: tuple[Condition, ...] = Field(min_length=1)


class Not(Model):
    """The condition does not hold."""

    not_: Condition = Field(alias="not")


def _tag(v: Any) -> str | None:
    if isinstance(v, dict):
        for key, tag in (("fact", "test"), ("all", "all"), ("any", "any"), ("not", "not")):
            if key in v:
                return tag
        return None
    tags: dict[type, str] = {Test: "test", AllOf: "all", AnyOf: "any", Not: "not"}
    return tags.get(type(v))


Condition = Annotated[
    Annotated[Test, Tag("test")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _tag,
        custom_error_type="condition",
        custom_error_message="a condition is {fact, op, value}, {all: [...]}, {any: [...]} or {not: ...}",
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def facts_of(cond: Test | AllOf | AnyOf | Not) -> Iterator[str]:
    """Every fact name a condition tests."""
    if isinstance(cond, Test):
        yield cond.fact
    elif isinstance(cond, AllOf | AnyOf):
        for c in cond.all if isinstance(cond, AllOf) else cond.any:
            yield from facts_of(c)
    else:
        yield from facts_of(cond.not_)


def _test(t: Test, v: FactValue) -> bool | None:
    if t.op == "present":
        return v is not None
    if t.op == "absent":
        return v is None
    if v is None:
        return None
    op, val = t.op, t.value
    if op == "is_true":
        return v is True
    if op == "is_false":
        return v is False
    if op == "eq":
        return v == val
    if op == "ne":
        return v != val
    if isinstance(v, frozenset):
        if op == "contains":
            return val in v
        if op == "empty":
            return not v
        if op == "not_empty":
            return bool(v)
        members = set(val) if isinstance(val, tuple) else set()
        if op == "subset_of":
            return v <= members
        return bool(v & members) if op == "intersects" else not (v & members)
    if op in ("in", "not_in"):
        inside = isinstance(val, tuple) and v in val
        return inside if op == "in" else not inside
    if isinstance(v, int) and isinstance(val, int):
        return {"gt": v > val, "ge": v >= val, "lt": v < val, "le": v <= val}[op]
    raise TypeError("a fact does not have the type its registry entry says")  # pragma: no cover


def evaluate(cond: Test | AllOf | AnyOf | Not, facts: Mapping[str, FactValue]) -> bool | None:
    """Evaluate a condition over facts with Kleene three-valued logic (None = unknown)."""
    if isinstance(cond, Test):
        return _test(cond, facts.get(cond.fact))
    if isinstance(cond, Not):
        inner = evaluate(cond.not_, facts)
        return None if inner is None else not inner
    parts = [evaluate(c, facts) for c in (cond.all if isinstance(cond, AllOf) else cond.any)]
    if isinstance(cond, AllOf):
        if False in parts:
            return False
        return None if None in parts else True
    if True in parts:
        return True
    return None if None in parts else False
