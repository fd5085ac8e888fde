"""Entry point: `python -m panicsafe.chat`."""

from panicsafe.chat.app import build_spec
from panicsafe.chat.settings import ChatSettings
from panicsafe.core.service import run_service

if __name__ == "__main__":
    run_service(build_spec(), ChatSettings)
