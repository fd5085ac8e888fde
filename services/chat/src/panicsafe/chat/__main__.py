"""Entry point: `python -m panicsafe.chat`."""

from panicsafe.chat.app import SPEC
from panicsafe.core.service import run_service

if __name__ == "__main__":
    run_service(SPEC)
