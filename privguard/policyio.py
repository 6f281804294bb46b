"""Reading privguard's data files (profiles, allow-lists, requests, consents, policies, approvals).

YAML or JSON, strictly.

Three small steps, each failing closed: read the bytes, parse them, validate
them into a frozen model. Errors name the file and the field path (pydantic's
``loc``) but never the value found there.

The YAML dialect is YAML 1.1 as PyYAML reads it with two safety changes:

* only ``true``/``false`` (any case style) are booleans, so ``country: NO``
  stays the string ``"NO"`` (Norway) instead of becoming ``False``;
* a key repeated in one mapping is an error, not "last one wins".
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from privguard.errors import PolicyError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

_BOOL_TAG = "tag:yaml.org,2002:bool"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no duplicate keys."""

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


def parse_text(text: str, fmt: str, what: str, source: str) -> Any:
    """Parse ``text`` as ``fmt`` (``"yaml"`` or ``"json"``); ``what``/``source`` name it in errors."""
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{what} {source} is not valid JSON (line {exc.lineno})") from None
        except ValueError as exc:
            raise PolicyError(f"{what} {source} is not valid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if isinstance(problem, str) and "repeated" in problem else ""
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
        return path.read_bytes().decode("utf-8")
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
