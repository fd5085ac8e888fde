"""First use of the web client, as a new member meets it: QR codes a phone can read, a code field that
starts empty, a used invitation link that leads somewhere, French words and Paris time on screen and in
the exports, and a tab title that says when someone mentions you.

Each test reads the screen as a person would: the QR codes are decoded from screenshots.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import (
    PASSWORD,
    admin_and_crisis,
    chromium,
    enrol,
    expect_empty_code_field,
    export,
    invite,
    new_person,
    open_chat,
    read_qr,
    say,
    screenshot,
)
from gwclient import GatewayUnderTest
from playwright.async_api import Browser, Response, expect
from pypdf import PdfReader

from panicsafe.logbook.evidence.pdf import SOURCE_LABELS

# Code values that must never reach a French reader (roles, severities, statuses, sources).
RAW_VALUES = re.compile(
    r"\b(director|coordinator|member|observer|minor|significant|major|critical|recovery|closed"
    r"|gateway|chat|manual|logbook)\b"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_qr_codes_on_screen_read_as_the_secret_and_the_invitation_link(
    gateway: GatewayUnderTest, browser: Browser
) -> None:
    # Enrolment: the QR code a phone scans carries the very secret written under it.
    admin = await admin_and_crisis(gateway, browser, "QR codes lisibles au CH de Lens", shots=False)
    uri = urlsplit(admin.totp_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp"), admin.totp_uri
    assert parse_qs(uri.query)["secret"] == [admin.secret]

    # Invitation: the QR code carries the link shown beside it, whole.
    link = await invite(admin, "Nadia Haddad", f"nadia.{secrets.token_hex(3)}")
    issued = admin.page.get_by_test_id("invitation")
    assert await read_qr(issued.locator(".qr")) == link
    await screenshot(admin.page, "invitation-qr")

    nadia = await new_person(browser, gateway.url)
    await enrol(nadia, link)  # its QR code read too, and its code field checked empty
    assert parse_qs(urlsplit(nadia.totp_uri).query)["secret"] == [nadia.secret]


async def test_the_code_field_never_shows_the_password(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Champ de code au CH d'Arras", shots=False)
    link = await invite(admin, "Hugo Petit", f"hugo.{secrets.token_hex(3)}")
    hugo = await new_person(browser, gateway.url)
    # Enrolment: after the password, the code is asked for in an empty field of its own (`enrol` checks
    # it before typing the code; the screenshot shows it).
    await enrol(hugo, link, shot="first-use")

    # Login: the same, and after switching to a recovery code and back.
    page = hugo.page
    await page.get_by_role("button", name="Se déconnecter").click()
    await expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    await page.get_by_label("Identifiant").fill(hugo.login)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    code = page.get_by_label("Code à 6 chiffres")
    await expect_empty_code_field(code)
    await screenshot(page, "login-code-empty")
    await code.fill("12")
    await page.get_by_role("button", name="Utiliser un code de secours").click()
    await expect(page.get_by_label("Code de secours")).to_have_value("")
    await page.get_by_role("button", name="Utiliser l'application").click()
    await expect_empty_code_field(code)
    await code.fill(hugo.code())
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_test_id("crisis-list")).to_contain_text("Champ de code au CH d'Arras")


async def test_a_used_invitation_link_leads_to_the_login_page(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Lien réutilisé au CH de Béthune", shots=False)
    link = await invite(admin, "Léa Martin", f"lea.{secrets.token_hex(3)}")
    lea = await new_person(browser, gateway.url)
    await enrol(lea, link)

    # Later, on another computer, the same link again: a clear word, and a way on.
    again = await new_person(browser, gateway.url)
    page = again.page
    await page.goto(link)
    dead = page.get_by_test_id("dead-invitation")
    await expect(dead.get_by_role("heading")).to_have_text("Ce lien d'invitation n'est plus valable")
    await expect(dead).to_contain_text("ne sert qu'une fois")
    await screenshot(page, "invitation-used")
    await dead.get_by_role("link", name="Aller à la page de connexion").click()
    await expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    await page.get_by_label("Identifiant").fill(lea.login)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await page.get_by_label("Code à 6 chiffres").fill(lea.code())
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_test_id("crisis-list")).to_contain_text("Lien réutilisé au CH de Béthune")


async def test_french_words_and_paris_time_on_screen_and_in_exports(
    gateway: GatewayUnderTest, browser: Browser, tmp_path: Path
) -> None:
    title = "Mots français au CH de Douai"
    admin = await admin_and_crisis(gateway, browser, title, shots=False)
    crisis_url = admin.page.url
    home = admin.page.get_by_test_id("crisis-home")
    await expect(home).to_contain_text("gravité majeure")
    shown = re.search(r"T0 (\d\d/\d\d/\d{4} \d\d:\d\d)", await home.inner_text())
    assert shown, await home.inner_text()
    t0 = shown.group(1)  # as the screen shows it, on the browser's Paris clock

    link = await invite(admin, "Karim Benali", f"karim.{secrets.token_hex(3)}", role="Coordinateur·rice")
    karim = await new_person(browser, gateway.url)
    await enrol(karim, link)
    card = karim.page.get_by_test_id("crisis-list").locator("li", has_text=title)
    await expect(card).to_contain_text("gravité majeure")
    await expect(card).to_contain_text("Coordinateur·rice")
    assert not RAW_VALUES.search(await card.inner_text())

    # A chat message marked into the main courante, and an entry typed there.
    await open_chat(admin, crisis_url)
    await say(admin, "Décision : fermeture des urgences à 16 h.")
    message = admin.page.locator("li.message", has_text="fermeture des urgences")
    await message.get_by_test_id("mark").select_option("DECISION")
    await expect(message.get_by_test_id("marked")).to_contain_text("Décision")
    await admin.page.goto(f"{crisis_url}/main-courante")
    await admin.page.get_by_role("button", name="Nouvelle entrée").click()
    form = admin.page.get_by_role("form", name="Nouvelle entrée de la main courante")
    await form.get_by_label("Résumé").fill("Appel de l'ARS : point de situation demandé pour 18 h.")
    await form.get_by_role("button", name="Inscrire").click()

    entries = admin.page.get_by_test_id("entries")
    declared = entries.locator("li", has_text="Crise déclarée")
    await expect(declared).to_contain_text(f"gravité majeure, T0 {t0} (heure de Paris, UTC+0")
    await expect(declared).to_contain_text("source : plateforme")
    await expect(entries.locator("li", has_text="a émis une invitation")).to_contain_text("(rôle coordinateur·rice)")
    await expect(entries.locator("li", has_text="rejoint la crise")).to_contain_text("(rôle coordinateur·rice)")
    await expect(entries.locator("li", has_text="fermeture des urgences")).to_contain_text("source : messagerie")
    await expect(entries.locator("li", has_text="Appel de l'ARS")).to_contain_text("source : saisie manuelle")
    text = await entries.inner_text()
    assert " UTC." not in text
    assert not RAW_VALUES.search(text), RAW_VALUES.findall(text)
    await screenshot(admin.page, "main-courante-french")

    # The exports say the same words.
    exports = admin.page.get_by_test_id("logbook")
    table = await export(admin, exports.get_by_role("button", name="CSV"), tmp_path)
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8-sig"), newline=""), delimiter=";"))
    sources = {row["Source"] for row in rows}
    assert {"Plateforme", "Messagerie", "Saisie manuelle"} <= sources <= set(SOURCE_LABELS.values()), sources
    summaries = " ".join(row["Résumé"] for row in rows)
    assert f"T0 {t0} (heure de Paris" in summaries
    assert "(rôle coordinateur·rice)" in summaries
    assert not RAW_VALUES.search(summaries), RAW_VALUES.findall(summaries)
    document = await export(admin, exports.get_by_role("button", name="Export PDF"), tmp_path)
    pdf = " ".join(page.extract_text() for page in PdfReader(document).pages)
    pdf = re.sub(r"\s+", " ", pdf)
    for words in ("Source : Plateforme", "Source : Messagerie", "Source : Saisie manuelle", "gravité majeure"):
        assert words in pdf, words
    assert not re.search(r"Source : (gateway|chat|manual)\b", pdf)


async def test_the_tab_title_counts_a_mention_made_elsewhere(gateway: GatewayUnderTest, browser: Browser) -> None:
    admin = await admin_and_crisis(gateway, browser, "Titre de l'onglet au CH de Lille", shots=False)
    crisis_url = admin.page.url
    link = await invite(admin, "Inès Garnier", f"ines.{secrets.token_hex(3)}")
    ines = await new_person(browser, gateway.url)
    await enrol(ines, link)
    await expect(ines.page).to_have_title("PanicSAFE — Crises")

    # Inès reads the main courante (no chat on screen); Claire mentions her in the chat.
    await ines.page.goto(f"{crisis_url}/main-courante")
    await expect(ines.page).to_have_title("PanicSAFE — Main courante")
    await open_chat(admin, crisis_url)
    await say(admin, "@Inès Garnier peux-tu appeler le SAMU ?")
    await expect(ines.page).to_have_title("(1) PanicSAFE — Main courante")
    await say(admin, "@Inès Garnier et la pharmacie aussi.")
    await expect(ines.page).to_have_title("(2) PanicSAFE — Main courante")

    # Reading the channel where she was mentioned clears the count, on screen then on the server.
    def marks_read(response: Response) -> bool:
        return response.url.endswith("/graphql") and "MarkRead" in (response.request.post_data or "")

    async with ines.page.expect_response(marks_read) as marked:
        await ines.page.goto(f"{crisis_url}/messagerie")
        await expect(ines.page.get_by_test_id("messages")).to_contain_text("la pharmacie aussi")
        await expect(ines.page).to_have_title("PanicSAFE — Messagerie")
    assert (await marked.value).ok
    await ines.page.goto(f"{crisis_url}/main-courante")
    await expect(ines.page.get_by_test_id("logbook")).to_be_visible()
    await expect(ines.page).to_have_title("PanicSAFE — Main courante")
