"""QR codes as SVG, for TOTP enrolment on screen."""

from __future__ import annotations

import io

import segno

SCALE = 6
BORDER = 4


def qr_svg(data: str) -> str:
    """A standalone SVG (black on white, error correction level M) encoding `data`."""
    code = segno.make(data, error="m", micro=False, boost_error=False)
    buffer = io.BytesIO()
    code.save(
        buffer,
        kind="svg",
        scale=SCALE,
        border=BORDER,
        dark="#000000",
        light="#ffffff",
        xmldecl=False,
        svgns=True,
        nl=False,
    )
    return buffer.getvalue().decode("utf-8")
