"""QR codes as SVG, for TOTP enrolment and invitations on screen."""

from __future__ import annotations

import io

import segno

SCALE = 6
BORDER = 4


def qr_svg(data: str) -> str:
    """A standalone SVG (black on white, error correction level M) encoding `data`.

    Drawn in module units with a `viewBox`, so that a page may show it at any size and still show all
    of it (the three finder patterns a phone looks for); `width` and `height` give its natural size.
    """
    code = segno.make(data, error="m", micro=False, boost_error=False)
    buffer = io.BytesIO()
    code.save(
        buffer,
        kind="svg",
        scale=1,
        border=BORDER,
        dark="#000000",
        light="#ffffff",
        xmldecl=False,
        svgns=True,
        nl=False,
        omitsize=True,
    )
    svg = buffer.getvalue().decode("utf-8")
    width, height = code.symbol_size(scale=SCALE, border=BORDER)
    # crispEdges: scaled by a fraction, modules stay sharp squares instead of grey seams.
    size = f'<svg width="{width}" height="{height}" shape-rendering="crispEdges" '
    if not svg.startswith("<svg ") or " viewBox=" not in svg:
        raise RuntimeError("segno's SVG has no viewBox: its output format changed")
    return size + svg.removeprefix("<svg ")
