"""Composition root of the sara service."""

from pathlib import Path

from panicsafe.core.service import ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.sara.handlers import router

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(name="sara", version=package_version("panicsafe-sara"), router=router, migrations=MIGRATIONS)
