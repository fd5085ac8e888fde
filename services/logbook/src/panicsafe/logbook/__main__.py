"""Entry point: `python -m panicsafe.logbook`."""

from panicsafe.core.service import run_service
from panicsafe.logbook.app import build_spec
from panicsafe.logbook.settings import LogbookSettings

if __name__ == "__main__":
    run_service(build_spec(), LogbookSettings)
