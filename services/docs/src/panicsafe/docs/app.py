"""Composition root of the docs service: no operations or tables of its own yet (health only)."""

from panicsafe.core.service import ServiceSpec
from panicsafe.docs.settings import DocsSettings

SPEC = ServiceSpec(name="docs", settings=DocsSettings)
