"""``privguard serve``: the de-identifying DICOM node (see docs/node.md)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from privguard_cli.errors import handle_errors

_AE_AT = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")


def _destination(value: str) -> dict[str, Any]:
    """AE@host:port (C-STORE), an http(s) URL (STOW-RS) or a folder path."""
    m = _AE_AT.match(value)
    if m:
        return {"type": "dimse", "ae_title": m["ae"], "host": m["host"], "port": int(m["port"])}
    if value.startswith(("http://", "https://")):
        return {"type": "stow", "url": value}
    return {"type": "folder", "path": value}


def build_config(config: Path | None, overrides: dict[str, Any]) -> Any:
    """The file's configuration with the command-line flags laid over it, validated."""
    from privguard.errors import ConfigError
    from privguard.node.config import NodeConfig
    from privguard.policyio import read_document, validate

    data: dict[str, Any] = {}
    if config is not None:
        doc = read_document(config, "node configuration")
        if not isinstance(doc, dict):
            raise ConfigError(f"node configuration {config} must be a mapping at the top level")
        data = doc
    for dotted, value in overrides.items():
        if value is None or value == ():
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return validate(NodeConfig, data, "node configuration", str(config or "(command line)"))


@click.group(invoke_without_command=True)
@click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="node.yaml"
)
@click.option("--host", help="Listen address [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port [default: 11112].")
@click.option("--ae-title", help="This node's AE title [default: PRIVGUARD].")
@click.option("--allow", "allow", multiple=True, help="Calling AE title allowed to send (repeatable).")
@click.option(
    "--forward-to", help="AE@host:port (C-STORE), an http(s) DICOMweb base URL (STOW-RS), or a folder."
)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Project key file.")
@click.option("--profile", help="De-identification profile [default: basic].")
@click.option("--project", help="Project name.")
@click.option("--queue", type=click.Path(file_okay=False, path_type=Path), help="Durable queue folder.")
@click.option("--workers", type=click.IntRange(1, 256), help="Worker processes [default: all cores].")
@click.option("--ocr", type=click.Choice(["auto", "on", "off"]), help="Burned-in text stage.")
@click.option(
    "--log", type=click.Path(dir_okay=False, path_type=Path), help="JSON-lines log [default: stderr]."
)
@click.option("--status-port", type=click.IntRange(0, 65535), help="Loopback status port (0: any free).")
@click.pass_context
@handle_errors
def serve(ctx: click.Context, /, config: Path | None, **flags: Any) -> None:
    """Run the de-identifying DICOM node until SIGTERM or Ctrl-C.

    It accepts C-ECHO and C-STORE from the allowed AE titles, stores each
    instance durably before acknowledging it, de-identifies it, and forwards
    it in arrival order per study. Subcommands: status, unseal.
    """
    if ctx.invoked_subcommand is not None:
        return
    from privguard.node import Node

    forward = flags.pop("forward_to")
    overrides = {
        "listen.host": flags["host"],
        "listen.port": flags["port"],
        "listen.ae_title": flags["ae_title"],
        "listen.allowed_callers": flags["allow"],
        "destination": _destination(forward) if forward else None,
        "key_file": flags["key_file"] and str(flags["key_file"]),
        "profile": flags["profile"],
        "project": flags["project"],
        "queue": flags["queue"] and str(flags["queue"]),
        "workers": flags["workers"],
        "ocr": flags["ocr"],
        "log": flags["log"] and str(flags["log"]),
        "status.port": flags["status_port"],
    }
    cfg = build_config(config, overrides)
    Node(cfg).serve()


@serve.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The node's configuration file.",
)
@handle_errors
def status(config: Path) -> None:
    """Print the running node's status (queue depth, counts, last errors; no PHI) as JSON."""
    from privguard.node.config import load_config
    from privguard.node.status import fetch_status

    cfg = load_config(config)
    if cfg.status is None:
        raise click.ClickException("the node's status endpoint is switched off (status: null)")
    port = cfg.status.port
    port_file = cfg.queue / "status.port"
    if port == 0 and port_file.is_file():
        port = int(port_file.read_text().strip() or 0)
    try:
        data = fetch_status(cfg.status.host, port)
    except OSError as exc:
        click.echo(f"Error: the node is not answering on {cfg.status.host}:{port} ({exc})", err=True)
        sys.exit(1)
    click.echo(json.dumps(data, indent=2))


@serve.command()
@click.argument("sealed", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--config", "config", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the DICOM file.",
)
@handle_errors
def unseal(sealed: Path, config: Path, out: Path) -> None:
    """Decrypt a quarantined instance (it holds PHI: keep it at the sender)."""
    from privguard.node.config import load_config
    from privguard.node.quarantine import unseal as unseal_file
    from privguard.pseudonym.keys import ProjectKey, write_new_file

    cfg = load_config(config)
    data = unseal_file(sealed, ProjectKey.load(cfg.key_file), cfg.project)
    write_new_file(out, data, 0o600, what="a file")
    click.echo(f"wrote {out} (mode 0600; it holds PHI)")
