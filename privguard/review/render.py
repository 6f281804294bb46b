"""Rendering ``OUT/review/index.html`` from ``OUT/review/export.json``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from privguard.errors import ConfigError

REVIEW_DIR = "review"
DATA = "export.json"
PAGE = "index.html"


def load_review(out: Path) -> dict[str, Any]:
    """The review data the export wrote."""
    path = out / REVIEW_DIR / DATA
    try:
        data: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"{out} holds no {REVIEW_DIR}/{DATA}; it was not written by privguard export"
        ) from None
    except (OSError, ValueError):
        raise ConfigError(f"{path} is damaged") from None
    if data.get("format") != "privguard-export-review":
        raise ConfigError(f"{path} is not a privguard export review file")
    return data


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def build_page(out: Path) -> Path:
    """Render the page from the review data and images; return its path."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    from privguard.audit.manifest import write_atomic_bytes

    data = load_review(out)
    review = out / REVIEW_DIR
    images = []
    for img in data.get("images", []):
        before, after = review / img["before"], review / img["after"]
        if before.is_file() and after.is_file():
            images.append({**img, "before_uri": _data_uri(before), "after_uri": _data_uri(after)})
    env = Environment(
        loader=PackageLoader("privguard.review", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    html = env.get_template("index.html.j2").render(d=data, images=images)
    page = review / PAGE
    write_atomic_bytes(page, html.encode("utf-8"))
    return page
