"""Composition root of the video service: no operations or tables of its own yet (health only)."""

from panicsafe.core.service import ServiceSpec
from panicsafe.video.settings import VideoSettings

SPEC = ServiceSpec(name="video", settings=VideoSettings)
