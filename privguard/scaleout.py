"""Scale-out over a Ray cluster: moved to :mod:`privguard.batch.ray_executor`.

Kept so that ``from privguard.scaleout import RayExecutor`` still works; it
imports only downward (batch never imports this module).
"""

from __future__ import annotations

from privguard.batch.ray_executor import RayExecutor

__all__ = ["RayExecutor"]
