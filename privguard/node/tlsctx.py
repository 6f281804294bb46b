"""TLS contexts for the DICOM TLS profile (certificates from PEM files)."""

from __future__ import annotations

import ssl

from privguard.errors import ConfigError
from privguard.node.config import TlsFiles
from privguard.pseudonym.keys import check_private_file


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    """Listening side: our certificate; peers verified against ``ca`` when one is given."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert tls.cert is not None and tls.key is not None
    _load_chain(ctx, tls)
    if tls.ca is not None:
        _load_ca(ctx, tls)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(tls: TlsFiles) -> ssl.SSLContext:
    """Connecting side: the server verified against ``ca`` (or the system's), our certificate if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca is not None:
        _load_ca(ctx, tls)
    ctx.check_hostname = tls.check_hostname
    if tls.cert is not None:
        _load_chain(ctx, tls)
    return ctx


def _load_chain(ctx: ssl.SSLContext, tls: TlsFiles) -> None:
    if tls.key is None or tls.cert is None:
        raise ConfigError("a TLS certificate needs its key (tls.key)")
    check_private_file(tls.key, "TLS key file")
    try:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {tls.cert} or its key: {_why(exc)}") from None


def _load_ca(ctx: ssl.SSLContext, tls: TlsFiles) -> None:
    try:
        ctx.load_verify_locations(cafile=str(tls.ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS CA file {tls.ca}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
