"""The reference tables of docs/compliance.md, generated from the fact registry and the shipped policies.

``python -m privguard.compliance.reference docs/compliance.md`` rewrites the
part of that file between the two markers below; a test checks that the
file is in sync, so the documentation never drifts from the rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

from privguard.compliance.facts import FACTS
from privguard.compliance.loader import shipped_policies
from privguard.compliance.policy import RegulationPolicy

BEGIN = "<!-- BEGIN GENERATED: python -m privguard.compliance.reference docs/compliance.md -->"
END = "<!-- END GENERATED -->"

#: What a rule of each severity can do to the outcome.
EFFECT = {
    "deny": "deny",
    "review": "review",
    "info": "inform only",
    "exclude": "exclude patients",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The generated Markdown (facts, then the rules of every shipped policy)."""
    out = [
        BEGIN,
        "",
        "### Facts",
        "",
        "What rules can test (the registry in `privguard/compliance/facts.py`). A `request`-scope rule may "
        "test request and dataset facts; a `patient`-scope rule request and patient facts; `show` may name "
        "request and dataset facts.",
        "",
    ]
    for phase in ("request", "patient", "dataset"):
        out += [f"**{phase} phase**", "", "| Fact | Type | Values | Meaning |", "| --- | --- | --- | --- |"]
        for name, spec in FACTS.items():
            if spec.phase != phase:
                continue
            values = ", ".join(sorted(spec.values)) if spec.values else ""
            out.append(f"| `{name}` | {spec.type.value} | {_cell(values)} | {_cell(spec.doc)} |")
        out.append("")
    out += [
        "### Shipped rules",
        "",
        "Per regime and policy, every rule with its citation and what it can do: **deny**, send for "
        "**review**, **exclude patients** (per-patient rules) or **inform only**. A deny or review rule that "
        "applied and held is reported as a `pass` finding (with the facts it shows), so the officer sees why "
        "an export may go. *Interpretation* marks a rule resting on an Interpretation in compliance.md.",
        "",
    ]
    for loaded in sorted(shipped_policies(), key=lambda p: p.document.name):
        doc = loaded.document
        assert isinstance(doc, RegulationPolicy)
        out += [
            f"#### `{doc.name}` ({_cell(doc.title)}; regime {doc.regime.value}; version {doc.version}, "
            f"as of {doc.as_of.isoformat()})",
            "",
            "| Rule | Can | Citation | Checks | Shows |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in doc.rules:
            checks = r.checks + (" *(Interpretation)*" if r.interpretation else "")
            shows = ", ".join(f"`{n}`" for n in r.show)
            out.append(f"| {r.id} | {EFFECT[r.severity]} | {_cell(r.citation)} | {_cell(checks)} | {shows} |")
        out.append("")
    out.append(END)
    return "\n".join(out)


def update(path: Path) -> bool:
    """Rewrite the generated part of ``path``; return whether it changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def generated_part(text: str) -> str:
    """The generated part of a document's text."""
    return text[text.index(BEGIN) : text.index(END) + len(END)]


if __name__ == "__main__":  # pragma: no cover
    changed = update(Path(sys.argv[1]))
    print("updated" if changed else "up to date")
