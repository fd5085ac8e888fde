"""Passkeys in a real browser: enrolment and login with a WebAuthn authenticator in Debian's Chromium.

WebAuthn refuses IP addresses as relying parties, so this test runs its own platform whose public
address is `localhost` (loopback), on a devstack of its own, and gives Chromium a virtual
authenticator through the DevTools protocol (a platform authenticator with user verification).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, fresh_screenshots, screenshot
from gwclient import GatewayUnderTest, gateway_of
from playwright.async_api import Page, async_playwright, expect

from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform
from panicsafe.gateway.bootstrap import create_tenant


@pytest.fixture(scope="module")
async def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[GatewayUnderTest, str]]:
    folder = tmp_path_factory.mktemp("passkeys")
    stack = DevStack(folder / "stack", components=("nats", "postgres", "openbao")).start()
    platform = Platform(stack, folder / "platform", services=("gateway",), gateway_workers=1, public_host="localhost")
    try:
        await platform.start()
        async with gateway_of(platform) as gateway:
            yield gateway, platform.public_url
    finally:
        platform.stop()
        stack.stop()


async def with_authenticator(page: Page) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


async def test_enrol_and_sign_in_with_a_passkey(local_gateway: tuple[GatewayUnderTest, str], tmp_path: Path) -> None:
    gateway, public_url = local_gateway
    tenant = await create_tenant(
        gateway.db,
        gateway.keys,
        name="GHT Clés d'accès",
        region="HDF",
        admin_login="adm-passkey",
        admin_name="Paul Clé",
        establishments=(("Hôpital de Lens", "hospital"),),
        share_with_region=False,
    )
    fresh_screenshots()  # this session's folder, emptied of earlier runs' files
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(base_url=public_url, locale="fr-FR")).new_page()
            await with_authenticator(page)
            await page.goto(f"{public_url}/#/invitation/{tenant.invitation_token}")
            await page.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
            await page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
            await page.get_by_role("button", name="Continuer").click()
            await page.get_by_role("button", name="Utiliser plutôt une clé d'accès (passkey)").click()
            await expect(page.get_by_test_id("recovery-codes")).to_be_visible()
            await page.get_by_role("button", name="J'ai mis mes codes à l'abri").click()
            await expect(page.get_by_role("heading", name="Crises")).to_be_visible()

            await page.goto(f"{public_url}/#/securite")
            await expect(page.get_by_test_id("security")).to_contain_text("Clé d'accès")
            await screenshot(page, "security-passkey")

            # Without a password: the passkey alone (discoverable credential, user verified).
            await page.get_by_role("button", name="Se déconnecter").click()
            await page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
            await expect(page.get_by_role("heading", name="Crises")).to_be_visible()

            # With the password, then the passkey as the second factor.
            await page.get_by_role("button", name="Se déconnecter").click()
            await page.get_by_label("Identifiant").fill(tenant.admin_login)  # adm-passkey@<code of the organisation>
            await page.get_by_label("Mot de passe").fill(PASSWORD)
            await page.get_by_role("button", name="Continuer").click()
            await page.get_by_role("button", name="Utiliser une clé d'accès").click()
            await expect(page.get_by_role("heading", name="Crises")).to_be_visible()
        finally:
            await browser.close()
