"""Composition root of the chat service."""

from pathlib import Path

from panicsafe.chat.handlers import router
from panicsafe.core.service import ServiceSpec
from panicsafe.core.versions import package_version

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(name="chat", version=package_version("panicsafe-chat"), router=router, migrations=MIGRATIONS)
