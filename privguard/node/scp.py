"""The Storage SCP: C-ECHO and C-STORE for every storage SOP class, pynetdicom underneath.

Associations are accepted only from the allowed calling AE titles (others are
rejected at association, "calling AE title not recognised"). Each C-STORE
hands the encoded dataset, as received, to a callback that stores it
durably; the response status is what the callback returns, so a dataset is
acknowledged only once it is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from privguard.node.config import Listen

#: Status codes the node answers C-STORE with.
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000

Receiver = Callable[[bytes, str, str], int]
"""(encoded Part 10 bytes, calling AE title, SOP Instance UID from the request) -> status."""


#: Transfer syntaxes whose pixels the burned-in text stage cannot read: video (pydicom has no
#: decoder) and JPIP (the pixels are not in the dataset). Refused when the stage is on, so that a
#: sender such as Orthanc transcodes to a syntax the node can check instead.
NO_PIXEL_ACCESS = (
    "1.2.840.10008.1.2.4.10",
    "1.2.840.10008.1.2.4.11",
    "1.2.840.10008.1.2.4.94",
    "1.2.840.10008.1.2.4.95",
)


def transfer_syntaxes(pixels: bool) -> list[str]:
    """What the node accepts: every syntax pynetdicom knows, less those the pixel stage cannot read."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    return [ts for ts in ALL_TRANSFER_SYNTAXES if not (pixels and ts.startswith(NO_PIXEL_ACCESS))]


def copyable_contexts(contexts: list[Any]) -> list[Any]:
    """The same presentation contexts, as objects whose ``deepcopy`` copies the syntax list only.

    pynetdicom deep-copies the server's supported contexts for every association it accepts. With
    every storage SOP class and every transfer syntax (170 contexts, about 40 syntaxes each), the
    generic ``deepcopy`` takes about 95 ms per association on the test machine. Every other
    attribute of a context is immutable (``None``, a bool, an int, or a ``UID``, which is a ``str``),
    so a copy of the list of syntaxes makes an independent copy.
    """
    from pynetdicom.presentation import PresentationContext

    class CopyableContext(PresentationContext):
        def __deepcopy__(self, memo: dict[int, Any]) -> CopyableContext:
            new = CopyableContext.__new__(CopyableContext)
            new.__dict__.update(self.__dict__)
            new._transfer_syntax = list(self._transfer_syntax)
            return new

    out = []
    for cx in contexts:
        new = CopyableContext.__new__(CopyableContext)
        new.__dict__.update(cx.__dict__)
        new._transfer_syntax = list(cx._transfer_syntax)
        out.append(new)
    return out


def build_ae(listen: Listen, pixels: bool = False) -> Any:
    """An AE that supports Verification and all storage SOP classes (see :func:`transfer_syntaxes`)."""
    from pynetdicom import AE, AllStoragePresentationContexts
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    logging.getLogger("pynetdicom").setLevel(logging.ERROR)  # its debug output can quote identifiers
    ae = AE(ae_title=listen.ae_title)
    ae.add_supported_context(Verification)
    syntaxes = transfer_syntaxes(pixels)
    for cx in AllStoragePresentationContexts:
        if cx.abstract_syntax is not None:
            ae.add_supported_context(cx.abstract_syntax, syntaxes)
    ae.require_calling_aet = list(listen.allowed_callers)
    ae.maximum_associations = listen.max_associations
    ae.maximum_pdu_size = listen.max_pdu
    ae.acse_timeout = listen.acse_timeout
    ae.dimse_timeout = listen.dimse_timeout
    ae.network_timeout = listen.network_timeout
    return ae


def start_scp(listen: Listen, receive: Receiver, pixels: bool = False) -> tuple[Any, Any]:
    """Start listening (non-blocking); return the AE and its server (``server.shutdown()`` stops it)."""
    from pynetdicom import evt

    ssl_context = None
    if listen.tls is not None:
        from privguard.node.tlsctx import server_context

        ssl_context = server_context(listen.tls)

    def on_echo(event: Any) -> int:
        return SUCCESS

    def on_store(event: Any) -> int:
        try:
            raw = event.encoded_dataset(include_meta=True)
        except Exception:
            return CANNOT_UNDERSTAND
        calling = str(event.assoc.requestor.ae_title).strip()
        sop = str(event.request.AffectedSOPInstanceUID or "")
        return receive(raw, calling, sop)

    ae = build_ae(listen, pixels)
    server = ae.start_server(
        (listen.host, listen.port),
        block=False,
        ssl_context=ssl_context,
        evt_handlers=[(evt.EVT_C_ECHO, on_echo), (evt.EVT_C_STORE, on_store)],
        contexts=copyable_contexts(ae.supported_contexts),
    )
    return ae, server
