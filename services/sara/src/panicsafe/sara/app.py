"""Composition root of the sara service: no operations or tables of its own yet (health only)."""

from panicsafe.core.service import ServiceSpec
from panicsafe.sara.settings import SaraSettings

SPEC = ServiceSpec(name="sara", settings=SaraSettings)
