"""The log in the formats a hospital's audit repository takes.

* :func:`fhir_bundle`: one FHIR R4 ``AuditEvent`` per run (type DICOM 110106
  "Export", action R, agents for the exporting user (110153 Source Role ID),
  the application (110150) and the destination media (110154), the recipient
  organisation for an export (110152), the output set as the entity), in a
  ``collection`` Bundle. Each resource is validated with the ``fhir.resources``
  R4B models (R4B's AuditEvent is R4's).
* :func:`atna_messages`: one DICOM PS3.15 Annex A.5.3.4 "Data Export" audit
  message per run, as XML (the schema's ``csd-code``/``codeSystemName``/
  ``originalText`` coded values), one message per line, ready to be sent over
  syslog (IHE ITI-20, RFC 5424/5425).

Both carry only what the log holds: the user, the host, pseudonymous output
paths, keyed hashes and counts; no patient identifiers (compliance.md 5.1
"Interpretation": pseudonymous IDs, with the Anonymized detail set).
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

from privguard.audit.verify import Report, RunInfo
from privguard.errors import ConfigError

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
#: Fields an export run records (in its run or end record) that the formats carry as details.
EXPORT_FIELDS = ("request_id", "request_sha256", "approval_id", "decision", "consent_snapshot", "recipient")
#: EventOutcomeIndicator / AuditEvent.outcome by run outcome.
OUTCOME = {"success": "0", "partial": "4", "refused": "8", "failed": "8", "interrupted": "12"}


def _coding(code: str, display: str, system: str = DCM) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _details(run: RunInfo) -> list[tuple[str, str]]:
    start, end = run.start, run.end or {}
    rows: list[tuple[str, str]] = [
        ("privguard-run", run.run),
        ("command", run.command),
        ("software", str(start.get("software"))),
        ("key_id", str(start.get("key_id"))),
        ("project", str(start.get("project"))),
        ("Anonymized", "true"),
    ]
    prof = start.get("profile")
    if isinstance(prof, dict):
        rows += [("profile", str(prof.get("name"))), ("profile_sha256", str(prof.get("sha256")))]
    for k in EXPORT_FIELDS:
        value = end.get(k, start.get(k)) if end else start.get(k)
        if value is not None:
            rows.append((k, str(value)))
    if end:
        rows += [("chain_head", str(end.get("hash"))), ("chain_position", str(end.get("seq")))]
        if end.get("manifest_sha256"):
            rows.append(("manifest_sha256", str(end["manifest_sha256"])))
        if end.get("signed_by"):
            rows.append(("head_signed_by", str(end["signed_by"])))
        for k, v in sorted((end.get("counts") or {}).items()):
            rows.append((f"count.{k}", str(v)))
    return rows


def audit_event(run: RunInfo) -> dict[str, Any]:
    """The FHIR R4 AuditEvent (as JSON data) of one run."""
    start, end = run.start, run.end
    outcome = run.outcome
    agents: list[dict[str, Any]] = [
        {
            "type": {"coding": [_coding("110153", "Source Role ID")]},
            "who": {"display": str(start.get("user"))},
            **({"altId": str(start["operator"])} if start.get("operator") else {}),
            "requestor": True,
        },
        {
            "type": {"coding": [_coding("110150", "Application")]},
            "who": {"display": str(start.get("software"))},
            "requestor": False,
        },
        {
            "type": {"coding": [_coding("110154", "Destination Media")]},
            "who": {"identifier": {"value": str(start.get("out"))}},
            "requestor": False,
            "media": _coding("110037", "URI"),
        },
    ]
    recipient = (end or {}).get("recipient") or start.get("recipient")
    if recipient:
        agents.append(
            {
                "type": {"coding": [_coding("110152", "Destination Role ID")]},
                "who": {"display": str(recipient)},
                "requestor": False,
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": run.run.replace("_", "-"),
        "type": _coding("110106", "Export"),
        "action": "R",
        "period": {"start": start.get("time"), **({"end": end["time"]} if end else {})},
        "recorded": (end or start).get("time"),
        "outcome": OUTCOME.get(outcome, "8"),
        "outcomeDesc": outcome + (f": {end['reason']}" if end and end.get("reason") else ""),
        "agent": agents,
        "source": {
            "site": str(start.get("host")),
            "observer": {"display": "privguard"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": [
            {
                "what": {"identifier": {"value": str((end or {}).get("manifest_sha256") or run.run)}},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "20", "display": "Job"},
                "name": "de-identified output set (MANIFEST.sha256)",
                "detail": [{"type": k, "valueString": v} for k, v in _details(run)],
            }
        ],
    }
    return event


def fhir_bundle(report: Report, run_id: str | None = None) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle of the AuditEvents of ``report``'s runs, validated."""
    try:
        from fhir.resources.R4B.auditevent import AuditEvent
        from fhir.resources.R4B.bundle import Bundle
    except ImportError:
        raise ConfigError(
            "FHIR export needs the fhir.resources package: pip install 'privguard[audit]'"
        ) from None
    events = [audit_event(r) for r in _runs(report, run_id)]
    for ev in events:
        AuditEvent.model_validate(ev)  # raises on anything R4 does not allow
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{_uuid(ev['id'])}", "resource": ev} for ev in events],
    }
    Bundle.model_validate(bundle)
    return bundle


def _uuid(run_id: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "privguard:" + run_id))


def _runs(report: Report, run_id: str | None) -> list[RunInfo]:
    runs = [r for r in report.runs if run_id is None or r.run == run_id]
    if run_id is not None and not runs:
        raise ConfigError(f"run {run_id} is not in the log")
    return runs


def _code(parent: ET.Element, tag: str, code: str, display: str, system: str = "DCM") -> ET.Element:
    return ET.SubElement(parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": display})


def atna_message(run: RunInfo) -> bytes:
    """The DICOM PS3.15 A.5.3.4 Data Export audit message of one run (UTF-8 XML)."""
    start, end = run.start, run.end
    root = ET.Element("AuditMessage")
    ev = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": "R",
            "EventDateTime": str((end or start).get("time")),
            "EventOutcomeIndicator": OUTCOME.get(run.outcome, "8"),
        },
    )
    _code(ev, "EventID", "110106", "Export")
    if end and end.get("reason"):
        ET.SubElement(ev, "EventOutcomeDescription").text = f"{run.outcome}: {end['reason']}"
    user = ET.SubElement(
        root,
        "ActiveParticipant",
        {
            "UserID": str(start.get("user")),
            **({"AlternativeUserID": str(start["operator"])} if start.get("operator") else {}),
            "UserIsRequestor": "true",
        },
    )
    _code(user, "RoleIDCode", "110153", "Source Role ID")
    app = ET.SubElement(
        root, "ActiveParticipant", {"UserID": str(start.get("software")), "UserIsRequestor": "false"}
    )
    _code(app, "RoleIDCode", "110150", "Application")
    media = ET.SubElement(
        root, "ActiveParticipant", {"UserID": str(start.get("out")), "UserIsRequestor": "false"}
    )
    _code(media, "RoleIDCode", "110154", "Destination Media")
    _code(media, "MediaType", "110037", "URI")
    recipient = (end or {}).get("recipient") or start.get("recipient")
    if recipient:
        dest = ET.SubElement(
            root, "ActiveParticipant", {"UserID": str(recipient), "UserIsRequestor": "false"}
        )
        _code(dest, "RoleIDCode", "110152", "Destination Role ID")
    src = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": str(start.get("host"))})
    _code(src, "AuditSourceTypeCode", "4", "Application Server", "RFC-3881")
    obj = ET.SubElement(
        root,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": str((end or {}).get("manifest_sha256") or run.run),
            "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "20",
        },
    )
    _code(obj, "ParticipantObjectIDTypeCode", "privguard-manifest", "SHA-256 of MANIFEST.sha256", "privguard")
    for k, v in _details(run):
        ET.SubElement(
            obj, "ParticipantObjectDetail", {"type": k, "value": base64.b64encode(v.encode()).decode()}
        )
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return data


def atna_messages(report: Report, run_id: str | None = None) -> list[bytes]:
    """One A.5.3.4 message per run."""
    return [atna_message(r) for r in _runs(report, run_id)]
