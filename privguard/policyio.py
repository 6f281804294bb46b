"""Reading privguard's data files (profiles, allow-lists, requests, consents, policies, approvals).

YAML or JSON, strictly.

Three small steps, each failing closed: read the bytes, parse them, validate
them into a frozen model. Errors name the file and the field path (pydantic's
``loc``) but never the value found there.

The YAML dialect is YAML 1.1 as PyYAML reads it with two safety changes:

* only ``true``/``false`` (any case style) are booleans, so ``country: NO``
  stays the string ``"NO"`` (Norway) instead of becoming ``False``;
* a key repeated in one mapping is an error, not "last one wins".

Every file is bounded before it is trusted (an input may be hostile): at most
:data:`MAX_BYTES` bytes, at most :data:`MAX_DEPTH` levels of nesting, and in
YAML the aliases may add at most :data:`MAX_ALIAS_EXPANSION` nodes beyond the
ones written out (a "billion laughs" alias bomb is refused before it is
built).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

from privguard.errors import PolicyError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

_BOOL_TAG = "tag:yaml.org,2002:bool"

MAX_BYTES = 64 << 20
"""The largest YAML or JSON file privguard reads."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists accepted."""
MAX_ALIAS_EXPANSION = 10_000
"""How many nodes YAML aliases may add beyond those written out."""


MAX_ANY_NODES = 10_000
"""The most values (scalars, lists, mappings) one free-form (``Any``) field may hold."""


class _Limits(yaml.constructor.ConstructorError):
    pass


def bounded_json(value: Any) -> Any:
    """Refuse a free-form value with more than :data:`MAX_ANY_NODES` values or deeper than MAX_DEPTH."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_ANY_NODES:
            raise ValueError(f"holds more than {MAX_ANY_NODES} values")
        if depth > MAX_DEPTH:
            raise ValueError(f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            count += len(item)  # the keys
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return value


BoundedAny = Annotated[Any, AfterValidator(bounded_json)]
"""A free-form value with a size and depth bound."""
BoundedTuple = Annotated[tuple[Any, ...], AfterValidator(bounded_json)]
"""A free-form list field (e.g. a FHIR ``extension``), bounded as a whole."""
BoundedDict = Annotated[dict[str, Any], AfterValidator(bounded_json)]
"""A free-form mapping field (e.g. a FHIR ``meta``), bounded as a whole."""


def _expanded_weight(root: yaml.Node) -> tuple[int, int]:
    """(nodes as expanded through aliases, distinct nodes) of a composed YAML tree."""
    weight: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in weight:
            continue
        if isinstance(node, yaml.ScalarNode):
            weight[id(node)] = 1
            distinct += 1
            continue
        if isinstance(node, yaml.MappingNode):
            kids: list[yaml.Node] = [n for pair in node.value for n in pair]
        else:
            kids = list(node.value)
        if children_done:
            weight[id(node)] = 1 + sum(weight[id(k)] for k in kids)
            distinct += 1
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in weight)
    return weight[id(root)], distinct


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no duplicate keys, and bounded depth and aliases."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Limits(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            node: yaml.Node | None = super().compose_node(parent, index)
            assert node is not None
            return node
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node: yaml.Node | None = super().get_single_node()
        if node is not None:
            expanded, distinct = _expanded_weight(node)
            if expanded - distinct > MAX_ALIAS_EXPANSION:
                raise _Limits(None, None, "aliases expand it too far (an alias bomb?)", node.start_mark)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a key is repeated in one mapping", key_node.start_mark
                    )
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                ) from None
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("a key is repeated in one object")
        out[key] = value
    return out


def _no_constant(_: str) -> Any:
    raise ValueError("NaN and Infinity are not allowed")


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_text(text: str, fmt: str, what: str, source: str) -> Any:
    """Parse ``text`` as ``fmt`` (``"yaml"`` or ``"json"``); ``what``/``source`` name it in errors."""
    if len(text) > MAX_BYTES:
        raise PolicyError(f"{what} {source} is too large (over {MAX_BYTES >> 20} MiB)")
    if fmt == "json":
        if _json_depth(text) > MAX_DEPTH:
            raise PolicyError(f"{what} {source} is nested deeper than {MAX_DEPTH} levels")
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{what} {source} is not valid JSON (line {exc.lineno})") from None
        except ValueError as exc:
            raise PolicyError(f"{what} {source} is not valid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except RecursionError:
        raise PolicyError(f"{what} {source} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        shown = isinstance(problem, str) and ("repeated" in problem or isinstance(exc, _Limits))
        detail = f": {problem}" if shown else ""
        raise PolicyError(f"{what} {source} is not valid YAML{where}{detail}") from None


def file_format(path: Path, what: str) -> str:
    """Return ``"yaml"`` or ``"json"`` from the file name, or raise PolicyError."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise PolicyError(f"{what} {path} must be a .yaml, .yml or .json file")


def read_text(path: Path, what: str) -> str:
    """Read ``path`` as UTF-8 text, failing closed with a PolicyError."""
    if not path.is_file():
        raise PolicyError(f"{what} {path} not found")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise PolicyError(f"{what} {path} is too large (over {MAX_BYTES >> 20} MiB)")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"{what} {path} cannot be read ({exc.strerror})") from None


def read_document(path: Path, what: str) -> Any:
    """Read and parse a YAML or JSON file (the format follows the file name)."""
    fmt = file_format(path, what)
    return parse_text(read_text(path, what), fmt, what, str(path))


def validation_message(what: str, source: str, err: ValidationError) -> str:
    """A PHI-free summary of a pydantic error: field paths and messages, never the input values."""
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        # A few pydantic messages quote the input (e.g. an unknown union tag); never show it.
        for value in (e.get("input"), e.get("ctx", {}).get("tag")):
            if isinstance(value, str) and value and value in msg:
                msg = msg.replace(value, "...")
        parts.append(f"{loc}: {msg}")
    shown = parts[:8]
    more = f"; and {len(parts) - len(shown)} more" if len(parts) > len(shown) else ""
    return f"{what} {source} is invalid: " + "; ".join(shown) + more


def validate(model: type[M], data: Any, what: str, source: str) -> M:
    """Validate parsed data into ``model``; a mapping is required at the top level."""
    if not isinstance(data, dict):
        raise PolicyError(f"{what} {source} must be a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        logger.debug("validation of a %s failed with %d errors", what, exc.error_count())
        raise PolicyError(validation_message(what, source, exc)) from None


def load_model(model: type[M], path: str | Path, what: str) -> M:
    """Read, parse and validate one file."""
    p = Path(path)
    return validate(model, read_document(p, what), what, str(p))
