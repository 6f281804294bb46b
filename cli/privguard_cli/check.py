"""``privguard check``: may this export go, to whom, under which rules, for which patients?"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from privguard_cli.errors import handle_errors

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from privguard.compliance import Decision

_STYLE = {"allow": "bold green", "deny": "bold red", "needs_review": "bold yellow"}
_SEVERITY_STYLE = {"deny": "red", "review": "yellow", "exclude": "magenta", "info": "dim", "pass": "green"}


def parse_at(value: str | None) -> dt.datetime | None:
    """Parse ``--at``: an ISO 8601 date or time; no zone means UTC."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use an ISO 8601 date or time, e.g. 2026-03-01T09:00:00Z", param_hint="--at"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def render(decision: Decision, console: Console) -> None:
    """Print a decision as rich tables (no values from the request besides patient ids)."""
    from rich.table import Table
    from rich.text import Text

    head = Table.grid(padding=(0, 2))
    head.add_column(no_wrap=True)
    head.add_column(overflow="fold")
    head.add_row("Decision", Text(decision.outcome.upper(), style=_STYLE[decision.outcome]))
    head.add_row("Request", Text(decision.request_id))
    head.add_row("Request SHA-256", Text(decision.request_sha256))
    head.add_row("Regimes", Text(", ".join(decision.regimes) or "-"))
    head.add_row(
        "Policies",
        Text(
            ", ".join(f"{p.name} {p.version} (as of {p.as_of.isoformat()})" for p in decision.policies) or "-"
        ),
    )
    head.add_row("De-identification profile", Text(decision.deid_profile.name))
    if decision.consent_snapshot:
        head.add_row("Consent snapshot", Text(decision.consent_snapshot))
    head.add_row("Evaluated at", Text(decision.evaluated_at.isoformat()))
    for src in decision.sources:
        head.add_row(
            f"Source {src.id}",
            Text(
                f"{src.outcome.upper()} ({', '.join(src.policies)}; {src.included} of {src.requested} "
                "patients)",
                style=_STYLE[src.outcome],
            ),
        )
    console.print(head)

    if decision.findings:
        table = Table(title="Findings", show_lines=True, expand=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Rule", no_wrap=True)
        for name, ratio in (("Citation", 2), ("Finding", 5), ("Missing", 2)):
            table.add_column(name, ratio=ratio, overflow="fold")
        for f in decision.findings:
            message = f.message + (f" ({f.patients} patient(s))" if f.patients is not None else "")
            if f.interpretation and "Interpretation" not in message:
                message += " [Interpretation]"
            if f.overridden_by:
                message += f" [changed by site policy {f.overridden_by}]"
            if f.details:
                message += "\n" + "\n".join(f.details)
            if f.source:
                message = f"[source {f.source}] " + message
            table.add_row(
                Text(f.severity, style=_SEVERITY_STYLE[f.severity]),
                Text(f.rule_id),
                Text(f.citation),
                Text(message),
                Text(", ".join(f.missing)),
            )
        console.print(table)

    inc = decision.inclusion
    console.print(
        Text(
            f"Patients: {inc.requested} requested, {len(inc.included)} included, "
            f"{inc.excluded_count} excluded"
        )
    )
    if inc.excluded:
        excluded = Table(title="Excluded patients")
        excluded.add_column("Patient")
        excluded.add_column("Rules", overflow="fold")
        for e in inc.excluded:
            excluded.add_row(Text(e.patient), Text(", ".join(e.rules)))
        console.print(excluded)


@click.command()
@click.argument("request", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--consents", type=click.Path(dir_okay=False, path_type=Path), help="Consent records (YAML or JSON)."
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME|FILE",
    help="Shipped policy (gdpr, hipaa-safe-harbor, hipaa-limited-data-set, hipaa-expert-determination, "
    "pipl) or a policy file. Regulation policies replace the automatic choice; site policies add to it. "
    "Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON (for pipelines).")
@click.option("--at", "at", metavar="TIME", help="Evaluate as of this ISO 8601 time (default: now, UTC).")
@click.pass_context
@handle_errors
def check(
    ctx: click.Context,
    request: Path,
    consents: Path | None,
    policies: tuple[str, ...],
    as_json: bool,
    at: str | None,
) -> None:
    """Check an export REQUEST against consent records and GDPR/HIPAA/PIPL policies.

    \b
    Exit codes:
      0  allow
      3  deny
      5  needs_review
      2  a request, consent or policy file is missing or invalid
    """
    from rich.console import Console

    from privguard.compliance import check as run_check

    decision = run_check(request, consents, list(policies) or None, now=parse_at(at))
    if as_json:
        click.echo(decision.model_dump_json(indent=2))
    else:
        render(decision, Console(highlight=False, soft_wrap=False))
    ctx.exit(decision.exit_code)
