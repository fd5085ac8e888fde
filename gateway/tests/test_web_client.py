"""The web client in a real browser (Debian's Chromium, driven by Playwright) against the real stack.

The journey of a crisis cell: an administrator enrols from an invitation with TOTP, declares a crisis,
invites a colleague who enrols in another browser context; both chat in real time; a message is marked
as a decision and appears in both main courantes; the JSON evidence bundle is exported and verified
offline. Then a connection cut in the middle of a conversation: nothing lost, nothing doubled.
Screenshots of the main screens go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser import (
    PASSWORD,
    Person,
    admin_and_crisis,
    chromium,
    enrol,
    expect_empty_code_field,
    export,
    fresh_screenshots,
    invite,
    new_person,
    open_chat,
    say,
    screenshot,
)
from gwclient import GatewayUnderTest, gql, session_of
from playwright.async_api import Browser, Dialog, expect


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


JOURNEY_SHOTS = {
    "enrolment-welcome",
    "enrolment-totp",
    "enrolment-recovery-codes",
    "declare-crisis",
    "crisis-home",
    "invitation",
    "crises",
    "chat",
    "chat-phone",
    "main-courante",
    "security",
    "login",
}


async def test_the_crisis_cell_journey(gateway: GatewayUnderTest, browser: Browser, tmp_path: Path) -> None:
    shots = fresh_screenshots()
    admin = await admin_and_crisis(gateway, browser, "Rançongiciel au CH de Douai", shots=True)
    crisis_url = admin.page.url  # .../#/crise/<id>
    await screenshot(admin.page, "crisis-home")
    link = await invite(admin, "Karim Benali", "karim.benali")
    await screenshot(admin.page, "invitation")

    karim = await new_person(browser, gateway.url)
    await enrol(karim, link)
    await expect(karim.page.get_by_test_id("crisis-list")).to_contain_text("Rançongiciel au CH de Douai")
    await screenshot(karim.page, "crises")

    await open_chat(admin, crisis_url)
    await open_chat(karim, crisis_url)
    await say(admin, "Bonjour à tous : le SI est coupé, on passe en procédure dégradée.")
    await expect(karim.page.get_by_test_id("messages")).to_contain_text("procédure dégradée")
    await say(karim, "Décision proposée : isoler le réseau d'imagerie à 04h00.")
    await expect(admin.page.get_by_test_id("messages")).to_contain_text("isoler le réseau d'imagerie")
    await screenshot(admin.page, "chat")
    await karim.page.set_viewport_size({"width": 390, "height": 844})  # a phone in a corridor
    await expect(karim.page.get_by_test_id("composer")).to_be_visible()
    await screenshot(karim.page, "chat-phone")

    message = admin.page.locator("li.message", has_text="isoler le réseau d'imagerie")
    await message.get_by_test_id("mark").select_option("DECISION")
    await expect(message.get_by_test_id("marked")).to_contain_text("Décision")
    await expect(
        karim.page.locator("li.message", has_text="isoler le réseau d'imagerie").get_by_test_id("marked")
    ).to_contain_text("Décision")

    for person in (admin, karim):
        await person.page.goto(f"{crisis_url}/main-courante")
        entry = person.page.get_by_test_id("entries").locator("li", has_text="isoler le réseau d'imagerie")
        await expect(entry).to_contain_text("Décision")
    await screenshot(admin.page, "main-courante")

    bundle = await export_bundle(admin, tmp_path)
    verified = subprocess.run(
        [sys.executable, "-m", "panicsafe.logbook.verify", str(bundle)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK")
    assert "isoler le réseau d'imagerie" in bundle.read_text()

    await admin.page.goto(f"{gateway.url}/#/securite")
    await expect(admin.page.get_by_test_id("sessions")).to_contain_text("Cette session")
    await screenshot(admin.page, "security")

    # Signing out, then in again with the password and a code of the authenticator app.
    page = admin.page
    await page.get_by_role("button", name="Se déconnecter").click()
    await expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    await screenshot(page, "login")
    await page.get_by_label("Identifiant").fill(admin.login)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await expect_empty_code_field(page.get_by_label("Code à 6 chiffres"))
    await page.get_by_label("Code à 6 chiffres").fill(admin.code())
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_test_id("crisis-list")).to_contain_text("Rançongiciel au CH de Douai")
    # The folder was emptied when this session's browser started: these are this run's.
    taken = {path.stem for path in shots.glob("*.png")}
    assert not JOURNEY_SHOTS - taken, f"screenshots not taken: {JOURNEY_SHOTS - taken}"


async def export_bundle(admin: Person, folder: Path) -> Path:
    return await export(admin, admin.page.get_by_test_id("export-json"), folder)


async def test_connection_cut_loses_nothing_and_doubles_nothing(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Coupure réseau au SAMU", shots=False)
    crisis_url = admin.page.url  # .../#/crise/<id>
    link = await invite(admin, "Inès Garnier", "ines.garnier")
    ines = await new_person(browser, gateway.url)
    await enrol(ines, link)
    await open_chat(admin, crisis_url)
    await open_chat(ines, crisis_url)
    await say(admin, "avant la coupure")
    await expect(ines.page.get_by_test_id("messages")).to_contain_text("avant la coupure")

    context = ines.page.context
    await context.set_offline(True)
    await expect(ines.page.get_by_test_id("offline-banner")).to_be_visible()
    typed = [f"hors ligne {n}" for n in range(3)]
    for text in typed:
        await say(ines, text)
    await expect(ines.page.get_by_test_id("pending")).to_have_count(3)
    await screenshot(ines.page, "offline")
    missed = [f"pendant la coupure {n}" for n in range(2)]
    for text in missed:
        await say(admin, text)
    await expect(admin.page.get_by_test_id("messages")).to_contain_text(missed[-1])
    await context.set_offline(False)

    await expect(ines.page.get_by_test_id("offline-banner")).to_be_hidden(timeout=15_000)
    for text in typed + missed:
        await expect(ines.page.get_by_test_id("messages").locator(".text", has_text=text)).to_have_count(
            1, timeout=15_000
        )
        await expect(admin.page.get_by_test_id("messages").locator(".text", has_text=text)).to_have_count(1)
    await expect(ines.page.get_by_test_id("pending")).to_have_count(0)
    # The server holds each message once, in one order.
    texts = await server_texts(gateway, admin, crisis_url)
    assert sorted(t for t in texts if t.startswith(("hors ligne", "pendant"))) == sorted(typed + missed)
    assert [t for t in texts if t.startswith("hors ligne")] == typed  # in the order typed


async def server_texts(gateway: GatewayUnderTest, person: Person, crisis_url: str) -> list[str]:
    """The crisis channel's messages as the server holds them, read over the API with a new session."""
    crisis = crisis_url.rsplit("/", 1)[1]
    async with gateway.client() as client:
        challenge = await client.post("/auth/login", json={"login": person.login, "password": PASSWORD})
        done = await client.post(
            "/auth/login/totp", json={"challenge": challenge.json()["challenge"], "code": person.code()}
        )
        session = session_of(done)
        channels = await gql(
            client, session, "query($c: ID!) { chatChannels(crisisId: $c) { id kind } }", {"c": crisis}
        )
        channel = next(c["id"] for c in channels["chatChannels"] if c["kind"] == "CRISIS")
        history = await gql(
            client,
            session,
            "query($ch: ID!) { chatHistory(channelId: $ch, after: 0, first: 200) { messages { text } } }",
            {"ch": channel},
        )
    return [str(m["text"]) for m in history["chatHistory"]["messages"]]


async def test_exercise_banner_on_every_screen(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Exercice de crise cyber", shots=False, exercise=True)
    crisis_url = admin.page.url
    for suffix in ("", "/messagerie", "/main-courante"):
        await admin.page.goto(crisis_url + suffix)
        await expect(admin.page.get_by_test_id("exercise-banner")).to_contain_text("EXERCICE")
    await screenshot(admin.page, "exercise")
    await admin.page.goto(admin.page.url.split("#")[0] + "#/")
    await expect(admin.page.get_by_test_id("crisis-list")).to_contain_text("EXERCICE")


async def test_chat_mentions_replies_edits_and_retractions(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Messagerie de crise au CHU", shots=False)
    crisis_url = admin.page.url
    link = await invite(admin, "Karim Benali", "karim.b")
    karim = await new_person(browser, gateway.url)
    await enrol(karim, link)
    await open_chat(admin, crisis_url)
    await open_chat(karim, crisis_url)
    await karim.page.get_by_role("button", name="Liaisons externes").click()

    # A mention while Karim reads another channel: an unread badge with its "@".
    await say(admin, "@Karim Benali peux-tu vérifier les sauvegardes ?")
    badge = karim.page.get_by_role("button", name="Cellule de crise").get_by_test_id("unread")
    await expect(badge).to_have_text("1 @")
    await expect(karim.page).to_have_title("(1) PanicSAFE — Messagerie")  # a tab in the background says it
    await karim.page.get_by_role("button", name="Cellule de crise").click()
    mention = karim.page.locator("li.message.mention", has_text="vérifier les sauvegardes")
    await expect(mention).to_be_visible()
    await expect(karim.page).to_have_title("PanicSAFE — Messagerie")  # read

    # A reply quotes what it answers.
    await mention.get_by_role("button", name="Répondre").click()
    await expect(karim.page.locator("form.composer .reply")).to_contain_text("Claire Directrice")
    await say(karim, "Sauvegardes hors ligne intactes.")
    reply = admin.page.locator("li.message", has_text="Sauvegardes hors ligne intactes.")
    await expect(reply.locator("blockquote.reply")).to_contain_text("vérifier les sauvegardes")

    # An edit shows on both screens, marked as such.
    own = admin.page.locator("li.message", has_text="vérifier les sauvegardes")
    await own.get_by_role("button", name="Modifier").click()
    await admin.page.get_by_label("Nouveau texte").fill("@Karim Benali peux-tu vérifier les sauvegardes du PACS ?")
    await admin.page.get_by_role("button", name="Enregistrer").click()
    edited = karim.page.locator("li.message", has=karim.page.locator("div.text", has_text="sauvegardes du PACS"))
    await expect(edited).to_contain_text("(modifié)")

    # A retraction leaves a trace, not the text.
    async def confirm(dialog: Dialog) -> None:
        await dialog.accept()

    admin.page.once("dialog", confirm)
    target = admin.page.locator("li.message", has=admin.page.locator("div.text", has_text="sauvegardes du PACS"))
    await target.get_by_role("button", name="Retirer").click()
    for person in (admin, karim):
        messages = person.page.get_by_test_id("messages")
        await expect(messages).to_contain_text("Message retiré par Claire Directrice")
        await expect(messages.locator("div.text", has_text="sauvegardes du PACS")).to_have_count(0)
    await screenshot(karim.page, "chat-reply-edit-retract")
