"""Entry point: `python -m panicsafe.logbook`."""

from panicsafe.core.service import run_service
from panicsafe.logbook.app import SPEC

if __name__ == "__main__":
    run_service(SPEC)
