"""Entry point: `python -m panicsafe.docs`."""

from panicsafe.core.service import run_service
from panicsafe.docs.app import build_spec
from panicsafe.docs.settings import DocsSettings

if __name__ == "__main__":
    run_service(build_spec(), DocsSettings)
