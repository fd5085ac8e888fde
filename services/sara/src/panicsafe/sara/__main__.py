"""Entry point: `python -m panicsafe.sara`."""

from panicsafe.core.service import run_service
from panicsafe.sara.app import SPEC

if __name__ == "__main__":
    run_service(SPEC)
