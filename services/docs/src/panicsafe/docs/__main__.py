"""Entry point: `python -m panicsafe.docs`."""

from panicsafe.core.service import run_service
from panicsafe.docs.app import SPEC

if __name__ == "__main__":
    run_service(SPEC)
