"""Web client: the initial JavaScript (gzip) and the time until the crisis home is usable in headless Chromium.

- Size: the scripts `web/dist/index.html` loads at start (module script and module preloads), each
  gzipped at level 9 as a server would send them; the stylesheet is reported beside.
- Time: the real platform (gateway, chat, logbook) on the devstack serves the built client. A director
  with a crisis of a few cells and members signs in once through the HTTP API inside the browser
  context (refresh cookie and CSRF token, as after a login); then the crisis home is loaded `ROUNDS`
  times with the browser cache disabled, each time until it is usable: the T0 clock shown and the
  member list filled (the page's data has arrived and rendered). The figure is the median.
- Baseline: the same browser loading the gateway's plain access page (`/static/index.html`, no
  framework, no data) until its heading shows: what any page costs here, measured alike.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Figure, Result
from bench.gateway import ROOT, gwclient_module
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform

ROUNDS = 15
DIST = ROOT / "web" / "dist"


def initial_assets(dist: Path = DIST) -> tuple[int, int]:
    """(gzip bytes of the JavaScript loaded at start, gzip bytes of the stylesheets)."""
    html = (dist / "index.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(
        r'<link rel="modulepreload"[^>]+href="([^"]+)"', html
    )
    styles = re.findall(r'<link rel="stylesheet"[^>]+href="([^"]+)"', html)

    def packed(paths: list[str]) -> int:
        return sum(len(gzip.compress((dist / p.lstrip("/")).read_bytes(), 9)) for p in paths)

    return packed(scripts), packed(styles)


async def prepare(platform: Platform) -> dict[str, Any]:
    gw = gwclient_module()
    async with gw.gateway_of(platform) as gateway, gateway.client() as client:
        admin = await gw.new_tenant_admin(gateway, client, name="GHT Bench web")
        crisis = await gw.declare(client, admin, "Rançongiciel : accueil de crise")
        cells = {c["kind"]: c["id"] for c in crisis["cells"]}
        for name, kind in (("Karim Benali", "IT_OPERATIONS"), ("Sophie Lefèvre", "MEDICAL_CONTINUITY")):
            await gw.invite_and_enrol(
                client, admin, display_name=name, crisis_id=crisis["id"], crisis_role="MEMBER", cell_ids=[cells[kind]]
            )
    return {"crisis": crisis["id"], "login": admin.login, "password": gw.PASSWORD, "account": admin}


async def measure(platform: Platform, setup: dict[str, Any]) -> tuple[list[float], list[float]]:
    from playwright.async_api import async_playwright

    gwclient_module()  # puts gateway/tests on the path: the browser tests' Chromium settings
    browser_settings = importlib.import_module("browser")

    url = platform.gateway_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=browser_settings.CHROMIUM, args=browser_settings.CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(base_url=url, locale="fr-FR")
            # Sign in as the web client does: the refresh cookie lands in this context, the CSRF token
            # goes to the tab's sessionStorage before any script of the page runs.
            challenge = await context.request.post(
                "/auth/login", data={"login": setup["login"], "password": setup["password"]}
            )
            body = await challenge.json()
            session = await context.request.post(
                "/auth/login/totp", data={"challenge": body["challenge"], "code": setup["account"].fresh_code()}
            )
            csrf = (await session.json())["csrfToken"]
            page = await context.new_page()
            await page.add_init_script(
                f"if (!sessionStorage.getItem('ps_csrf')) sessionStorage.setItem('ps_csrf', {csrf!r});"
            )
            cdp = await context.new_cdp_session(page)
            await cdp.send("Network.enable")
            await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            home = f"{url}/#/crise/{setup['crisis']}"
            client_ms: list[float] = []
            for round_ in range(ROUNDS + 1):
                await page.goto("about:blank")
                started = time.perf_counter()
                await page.goto(home, wait_until="commit")
                await page.wait_for_selector('[data-testid="t0-clock"]', state="visible")
                await page.wait_for_selector('[data-testid="members"] li', state="visible")
                if round_:  # the first load warms the gateway's own caches
                    client_ms.append((time.perf_counter() - started) * 1000)
            baseline_ms: list[float] = []
            for round_ in range(ROUNDS + 1):
                await page.goto("about:blank")
                started = time.perf_counter()
                await page.goto(f"{url}/static/index.html", wait_until="commit")
                await page.wait_for_selector("h1", state="visible")
                if round_:
                    baseline_ms.append((time.perf_counter() - started) * 1000)
        finally:
            await browser.close()
    return client_ms, baseline_ms


def main() -> Result:
    result = Result("web")
    if not (DIST / "index.html").is_file():
        raise SystemExit("web/dist is missing: run `make setup` (it builds the web client)")
    js, css = initial_assets()
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-web-") as folder:
        stack = DevStack(Path(folder) / "stack", components=("nats", "postgres", "openbao", "s3")).start()
        try:
            platform = Platform(stack, Path(folder) / "platform", services=("gateway", "chat", "logbook"))
            try:
                asyncio.run(platform.start())
                setup = asyncio.run(prepare(platform))
                client_ms, baseline_ms = asyncio.run(measure(platform, setup))
            finally:
                platform.stop()
        finally:
            stack.stop()
    result.add(Figure("initial_js_gzip_kb", js / 1024, "KiB", target="< 200", met=js / 1024 < 200))
    result.add(Figure("stylesheet_gzip_kb", css / 1024, "KiB"))
    median = statistics.median(client_ms)
    result.add(
        Figure(
            "crisis_home_usable_ms",
            median,
            "ms",
            target="< 1000",
            baseline=("static_page_ms", statistics.median(baseline_ms)),
            met=median < 1000,
        )
    )
    result.add(Figure("crisis_home_usable_max_ms", max(client_ms), "ms"))
    result.notes.append(
        f"{ROUNDS} loads each, browser cache disabled, Debian Chromium headless; crisis home usable = T0 clock "
        "and member list rendered (a token refresh from the cookie, then the crisis query)"
    )
    return result
