"""Entry point: `python -m panicsafe.video`."""

from panicsafe.core.service import run_service
from panicsafe.video.app import SPEC

if __name__ == "__main__":
    run_service(SPEC)
