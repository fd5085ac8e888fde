"""Composition root of the docs service."""

from pathlib import Path

from panicsafe.core.service import ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.docs.handlers import router

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(name="docs", version=package_version("panicsafe-docs"), router=router, migrations=MIGRATIONS)
