"""A de-identifying DICOM node: receive from the PACS, scrub in flight, forward to the research archive.

``privguard serve --config node.yaml`` runs :class:`Node`: a pynetdicom
Storage SCP that stores every instance durably before acknowledging it,
de-identifies it in a worker pool, and forwards it by C-STORE, STOW-RS or
into a folder, in arrival order per study. See docs/node.md.
"""

from __future__ import annotations

from privguard.node.config import NodeConfig, load_config
from privguard.node.quarantine import unseal
from privguard.node.service import Node

__all__ = ["Node", "NodeConfig", "load_config", "unseal"]
