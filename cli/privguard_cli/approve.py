"""``privguard approve``: sign an approval of an export request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from privguard_cli.check import parse_at
from privguard_cli.errors import handle_errors


@click.command()
@click.argument("request", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--signing-key",
    "signing_key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The officer's private signing key (privguard keys new-signing).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the approval (never overwritten).",
)
@click.option(
    "--officer", required=True, help="Name or role of the approving officer (signed into the approval)."
)
@click.option(
    "--consents", type=click.Path(dir_okay=False, path_type=Path), help="Consent records (YAML or JSON)."
)
@click.option("--policy", "policies", multiple=True, metavar="NAME|FILE", help="As for privguard check.")
@click.option(
    "--valid-days",
    type=click.IntRange(1, 366),
    default=30,
    show_default=True,
    help="Days until the approval expires.",
)
@click.option(
    "--reviewed", is_flag=True, help="Approve a needs_review decision after reviewing its findings."
)
@click.option("--at", "at", metavar="TIME", help="Sign as of this ISO 8601 time (default: now, UTC).")
@handle_errors
def approve(
    request: Path,
    signing_key: Path,
    out: Path,
    officer: str,
    consents: Path | None,
    policies: tuple[str, ...],
    valid_days: int,
    reviewed: bool,
    at: str | None,
) -> None:
    """Check REQUEST and sign an approval of it with an Ed25519 key.

    The approval binds the request's canonical SHA-256, the decision, the
    policy versions, the inclusion list and an expiry. The export refuses to
    run without a valid, unexpired approval whose hash matches its request.

    \b
    Exit codes:
      0  approval written
      3  not signed: the check denied the export, or needs review without --reviewed
      2  a file, key or option is missing or invalid
    """
    from privguard.compliance.approval import approve_request

    decision, approval = approve_request(
        request,
        signing_key,
        officer=officer,
        valid_for=dt.timedelta(days=valid_days),
        consents=consents,
        policies=list(policies) or None,
        reviewed=reviewed,
        now=parse_at(at),
        out=out,
    )
    p = approval.payload
    click.echo(
        f"approved {p.request_id} ({decision.outcome}): {len(p.included_patients)} of "
        f"{decision.inclusion.requested} patients; approval {p.approval_id} by key {p.key_id}, "
        f"expires {p.expires_at.isoformat()}; wrote {out}"
    )
