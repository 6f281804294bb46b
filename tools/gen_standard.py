#!/usr/bin/env python3
"""Generate privguard's tables from the DICOM standard (development time only).

Reads:

* ``ps3.15-table-e1-1.csv`` and ``ps3.15-safe-private.csv``: machine-readable
  copies of DICOM PS3.15 Annex E Table E.1-1 and Table E.3.10-1 (see the
  README beside them for their edition and provenance);
* highdicom's PS3.3 IOD/module tables (``highdicom/_standard/*.json``), used
  only to learn each attribute's Type (1, 2, 3) per IOD, which the compound
  action codes of Table E.1-1 (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) depend on.

Writes ``privguard/header/_standard/{e1_1,safe_private,iod_types}.json``.
The output is committed; privguard never reads the CSV files at run time.

Usage::

    python tools/gen_standard.py --reference ../shared/reference
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from importlib import metadata, resources
from pathlib import Path

OPTION_COLUMNS = {
    "rtn_safe_priv": "retain_safe_private",
    "rtn_uids": "retain_uids",
    "rtn_dev_id": "retain_device_identity",
    "rtn_inst_id": "retain_institution_identity",
    "rtn_pat_chars": "retain_patient_characteristics",
    "rtn_long_full_dates": "retain_longitudinal_full_dates",
    "rtn_long_modif_dates": "retain_longitudinal_modified_dates",
    "clean_desc": "clean_descriptors",
    "clean_struct_cont": "clean_structured_content",
    "clean_graph": "clean_graphics",
}
CODES = {"X", "Z", "D", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
TAG_RE = re.compile(r"^\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)$")
OUT = Path(__file__).resolve().parent.parent / "privguard" / "header" / "_standard"


def read_edition(reference: Path) -> str:
    text = (reference / "README.md").read_text(encoding="utf-8")
    m = re.search(r"PS3\.15 (\d{4}[a-z])", text)
    if not m:
        raise SystemExit("cannot find the edition in the reference README")
    return m.group(1)


def parse_tag(text: str) -> str:
    """Return the tag as 8 upper-case hex digits, 'x' kept for masks, or 'private'."""
    if text.startswith("(gggg,eeee)"):
        return "private"
    m = TAG_RE.match(text)
    if not m:
        raise SystemExit(f"unexpected tag syntax: {text!r}")
    return (m.group(1) + m.group(2)).upper().replace("X", "x")


def gen_e1_1(reference: Path, edition: str) -> list[dict]:
    rows = []
    with open(reference / "ps3.15-table-e1-1.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            basic = r["basic_profile"]
            if basic not in CODES:
                raise SystemExit(f"unknown basic profile code {basic!r} in {r['tag']}")
            options = {}
            for col, name in OPTION_COLUMNS.items():
                if r[col]:
                    if r[col] not in CODES:
                        raise SystemExit(f"unknown option code {r[col]!r} in {r['tag']}")
                    options[name] = r[col]
            rows.append(
                {
                    "tag": parse_tag(r["tag"]),
                    "keyword": r["keyword"],
                    "name": r["name"],
                    "retired": r["retired"] == "Y",
                    "in_std_comp_iod": r["in_std_comp_iod"] == "Y",
                    "basic": basic,
                    "options": options,
                }
            )
    return rows


def gen_safe_private(reference: Path) -> list[dict]:
    rows = []
    with open(reference / "ps3.15-safe-private.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            m = TAG_RE.match(r["tag"])
            if not m:
                raise SystemExit(f"unexpected safe private tag {r['tag']!r}")
            group, elem = m.group(1).upper(), m.group(2).lower()
            if not elem.startswith("xx"):
                raise SystemExit(f"safe private element without block mask: {r['tag']!r}")
            rows.append(
                {
                    "creator": r["private_creator"],
                    "group": group,
                    "element": elem[2:].upper(),
                    "vr": r["vr"],
                }
            )
    return rows


def gen_iod_types(e1_rows: list[dict]) -> dict:
    """Each Table E.1-1 attribute's Type per module, and each IOD's modules.

    Only attributes whose action can depend on the Type are kept: those whose
    Basic Profile code is compound (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) or Z (a Type 1
    attribute needs a dummy rather than an empty value). Conditional types count
    as their unconditional form (1C as 1, 2C as 2): when the attribute is
    present, the condition is normally met. Module usage is ignored for the
    same reason. Paths are keyword paths through sequences, joined by "/".
    """
    base = resources.files("highdicom") / "_standard"
    sop_iod = json.loads((base / "sop_class_iod_map.json").read_text())
    iod_modules = json.loads((base / "iod_module_map.json").read_text())
    module_attrs = json.loads((base / "module_attribute_map.json").read_text())
    keywords = {r["keyword"] for r in e1_rows if r["keyword"] and ("/" in r["basic"] or r["basic"] == "Z")}
    rank = {"1": 1, "1C": 1, "2": 2, "2C": 2, "3": 3, "None": 3}
    modules: dict[str, dict[str, int]] = {}
    for mod, attrs in module_attrs.items():
        types: dict[str, int] = {}
        for attr in attrs:
            if attr["keyword"] not in keywords:
                continue
            path = "/".join([*attr["path"], attr["keyword"]])
            types[path] = min(rank[attr["type"]], types.get(path, 3))
        if types:
            modules[mod] = dict(sorted(types.items()))
    iods = {iod: sorted({m["key"] for m in mods if m["key"] in modules}) for iod, mods in iod_modules.items()}
    return {
        "source": f"highdicom {metadata.version('highdicom')} _standard tables (DICOM PS3.3)",
        "sop_class_iod": dict(sorted(sop_iod.items())),
        "iod_modules": dict(sorted(iods.items())),
        "module_types": dict(sorted(modules.items())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=Path("../shared/reference"))
    args = ap.parse_args()
    edition = read_edition(args.reference)
    e1 = gen_e1_1(args.reference, edition)
    OUT.mkdir(parents=True, exist_ok=True)
    header = {
        "standard": "DICOM PS3.15",
        "edition": edition,
        "table": "E.1-1",
        "generator": "tools/gen_standard.py",
    }
    (OUT / "e1_1.json").write_text(
        json.dumps({**header, "rows": e1}, indent=0, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    safe = gen_safe_private(args.reference)
    (OUT / "safe_private.json").write_text(
        json.dumps({**header, "table": "E.3.10-1", "rows": safe}, indent=0) + "\n", encoding="utf-8"
    )
    iod = gen_iod_types(e1)
    (OUT / "iod_types.json").write_text(json.dumps(iod, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        f"PS3.15 {edition}: {len(e1)} Table E.1-1 rows, {len(safe)} safe private rows, "
        f"{len(iod['iod_modules'])} IODs"
    )


if __name__ == "__main__":
    main()
