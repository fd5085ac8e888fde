"""Entry point: `python -m panicsafe.sara`."""

from panicsafe.core.service import run_service
from panicsafe.sara.app import build_spec
from panicsafe.sara.settings import SaraSettings

if __name__ == "__main__":
    run_service(build_spec(), SaraSettings)
