"""Driving the web client in Debian's Chromium with Playwright (imported by name by the browser tests)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from gwclient import unseen_code
from playwright.async_api import Browser, Page, expect

from panicsafe.gateway.identity import totp

CHROMIUM = os.environ.get("PANICSAFE_CHROMIUM", "/usr/bin/chromium")
# Chromium as root needs --no-sandbox; the rest keeps it off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "cheval-agrafe-Lune-97!"
# A shared 2-core CI machine can be slow to hash a password or start a socket: wait up to 15 s for
# what must appear (a wait ends as soon as it holds; nothing is slower when all is well).
expect.set_options(timeout=15_000)
ARTIFACTS = Path(os.environ.get("PANICSAFE_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


@dataclass
class Person:
    """Someone using the web client in a browser context of their own."""

    page: Page
    secret: str = ""
    last_step: int = 0
    login: str = ""
    name: str = ""

    def code(self) -> str:
        code, self.last_step = unseen_code(self.secret, self.last_step)
        return code


async def new_person(browser: Browser, base_url: str) -> Person:
    context = await browser.new_context(base_url=base_url, locale="fr-FR", accept_downloads=True)
    return Person(page=await context.new_page())


async def enrol(person: Person, link: str, *, shot: str | None = None) -> None:
    """From the invitation link to the crisis list: password, authenticator app, recovery codes."""
    page = person.page
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Bienvenue")).to_be_visible()
    person.login = (await page.get_by_test_id("login").text_content()) or ""
    await page.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
    await page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("heading", name="Second facteur")).to_be_visible()
    if shot:
        await screenshot(page, f"{shot}-totp")
    person.secret = (await page.get_by_test_id("totp-secret").text_content()) or ""
    person.last_step = int(time.time()) // 30
    await page.get_by_label("Code à 6 chiffres").fill(totp.code_at(person.secret, time.time()))
    await page.get_by_role("button", name="Activer").click()
    await expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    if shot:
        await screenshot(page, f"{shot}-recovery-codes")
    await page.get_by_role("button", name="J'ai mis mes codes à l'abri").click()
    await expect(page.get_by_role("heading", name="Crises")).to_be_visible()


async def screenshot(page: Page, name: str) -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
