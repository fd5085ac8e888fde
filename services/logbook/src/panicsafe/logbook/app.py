"""Composition root of the logbook service."""

from pathlib import Path

from panicsafe.core.service import ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.logbook.handlers import router

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(
        name="logbook", version=package_version("panicsafe-logbook"), router=router, migrations=MIGRATIONS
    )
