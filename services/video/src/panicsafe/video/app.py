"""Composition root of the video service."""

from pathlib import Path

from panicsafe.core.service import ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.video.handlers import router

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(name="video", version=package_version("panicsafe-video"), router=router, migrations=MIGRATIONS)
