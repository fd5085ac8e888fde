"""Entry point: `python -m panicsafe.video`."""

from panicsafe.core.service import run_service
from panicsafe.video.app import build_spec
from panicsafe.video.settings import VideoSettings

if __name__ == "__main__":
    run_service(build_spec(), VideoSettings)
