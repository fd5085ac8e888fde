"""Driving the web client in Debian's Chromium with Playwright (imported by name by the browser tests)."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zxingcpp
from gwclient import GatewayUnderTest, unseen_code
from PIL import Image
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from panicsafe.gateway.bootstrap import create_tenant
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


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium for a module's browser tests; the session's screenshot folder starts empty."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/setup.sh)")
    fresh_screenshots()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Person:
    """Someone using the web client in a browser context of their own."""

    page: Page
    secret: str = ""
    last_step: int = 0
    login: str = ""
    name: str = ""
    totp_uri: str = ""  # what the enrolment's QR code said, read from the screen

    def code(self) -> str:
        code, self.last_step = unseen_code(self.secret, self.last_step)
        return code


async def new_person(browser: Browser, base_url: str) -> Person:
    """A French user: French browser, clock on Paris time (this machine's may be on UTC)."""
    context = await browser.new_context(
        base_url=base_url, locale="fr-FR", timezone_id="Europe/Paris", accept_downloads=True
    )
    return Person(page=await context.new_page())


async def enrol(person: Person, link: str, *, shot: str | None = None) -> None:
    """From the invitation link to the crisis list: password, authenticator app, recovery codes."""
    page = person.page
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Bienvenue")).to_be_visible()
    person.login = (await page.get_by_test_id("login").text_content()) or ""
    assert "@" in person.login  # the whole sign-in identifier: login@organisation
    if shot:
        await screenshot(page, f"{shot}-welcome")
    await page.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
    await page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("heading", name="Second facteur")).to_be_visible()
    if shot:
        await screenshot(page, f"{shot}-totp")
    person.secret = (await page.get_by_test_id("totp-secret").text_content()) or ""
    person.totp_uri = await read_qr(page.locator(".qr"))
    person.last_step = int(time.time()) // 30
    code = page.get_by_label("Code à 6 chiffres")
    await expect_empty_code_field(code)
    await code.fill(totp.code_at(person.secret, time.time()))
    await page.get_by_role("button", name="Activer").click()
    await expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    if shot:
        await screenshot(page, f"{shot}-recovery-codes")
    await page.get_by_role("button", name="J'ai mis mes codes à l'abri").click()
    await expect(page.get_by_role("heading", name="Crises")).to_be_visible()


async def expect_empty_code_field(field: Locator) -> None:
    """A second factor's code field: empty (never the password just typed), in clear, digits on a phone."""
    await expect(field).to_have_value("")
    await expect(field).to_have_attribute("type", "text")
    await expect(field).to_have_attribute("autocomplete", "one-time-code")
    await expect(field).to_have_attribute("inputmode", "numeric")


async def read_qr(locator: Locator) -> str:
    """What the QR code shown in `locator` says, read from a screenshot as a phone's camera would."""
    png = await locator.screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"no readable QR code on screen ({len(found)} found)"
    return found[0].text


@functools.cache
def fresh_screenshots() -> Path:
    """The screenshot folder, emptied of earlier runs' files the first time a session asks for it."""
    folder = ARTIFACTS / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


async def admin_and_crisis(
    gateway: GatewayUnderTest, browser: Browser, title: str, shots: bool, *, exercise: bool = False
) -> Person:
    """A new tenant's administrator, enrolled in the browser, on the home of a crisis they declared."""
    tenant = await create_tenant(
        gateway.db,
        gateway.keys,
        name=f"GHT {title}",
        region="HDF",
        admin_login=f"adm-{secrets.token_hex(4)}",
        admin_name="Claire Directrice",
        establishments=(("Centre hospitalier de Douai", "hospital"),),
        share_with_region=False,
    )
    admin = await new_person(browser, gateway.url)
    await enrol(admin, f"{gateway.url}/#/invitation/{tenant.invitation_token}", shot="enrolment" if shots else None)
    page = admin.page
    await page.get_by_role("button", name="Déclarer une crise").click()
    await page.get_by_label("Intitulé").fill(title)
    await page.get_by_label("Centre hospitalier de Douai").check()
    if exercise:
        await page.get_by_label("Exercice").check()
    if shots:
        await screenshot(page, "declare-crisis")
    await page.get_by_role("button", name="Déclarer", exact=True).click()
    await expect(page.get_by_test_id("crisis-home")).to_be_visible()
    await expect(page.get_by_test_id("t0-clock")).to_have_text(re.compile(r"^T\+\d\d:\d\d$"))
    return admin


async def invite(admin: Person, name: str, login: str, *, role: str | None = None) -> str:
    """An invitation into the crisis on screen (`role`: its French name in the list); its link."""
    page = admin.page
    await page.get_by_label("Nom affiché").fill(name)
    await page.get_by_label("Identifiant de connexion").fill(login)
    if role is not None:
        await page.get_by_label("Rôle").select_option(label=role)
    await page.get_by_role("button", name="Créer l'invitation").click()
    link = page.get_by_test_id("invitation-link")
    await expect(link).to_be_visible()
    return (await link.text_content()) or ""


async def open_chat(person: Person, crisis_url: str) -> None:
    await person.page.goto(f"{crisis_url}/messagerie")
    await expect(person.page.get_by_test_id("composer")).to_be_visible()


async def say(person: Person, text: str) -> None:
    composer = person.page.get_by_test_id("composer")
    await composer.fill(text)
    await composer.press("Enter")


async def screenshot(page: Page, name: str) -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def export(person: Person, trigger: Locator, folder: Path) -> Path:
    """Click an export button of the main courante, confirm the second factor if asked, save the file."""
    page = person.page
    async with page.expect_download(timeout=30_000) as download_info:
        await trigger.click()
        reauth = page.get_by_role("form", name="Confirmer votre second facteur")
        try:
            await expect(reauth).to_be_visible(timeout=3_000)
        except AssertionError:
            pass  # the second factor is still fresh: the export went through at once
        else:
            await reauth.get_by_label("Code à 6 chiffres").fill(person.code())
            await reauth.get_by_role("button", name="Confirmer").click()
    download = await download_info.value
    path = folder / download.suggested_filename
    await download.save_as(path)
    return path
