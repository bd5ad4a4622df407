"""The widget and the agents' console in headless Chromium (Debian's), driven by Playwright, against the
real server on 127.0.0.1. Screenshots land in test-artifacts/ for a person to look at."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 640}
INPUT = "aiguillage-chat form.composer textarea"
# Questions that make the assistant ask which collectivity is asking before it answers.
VAGUE = [
    "Est-ce que l'ingénierie de l'ANCT est gratuite pour nous ?",
    "On voudrait être accompagnés pour un projet de revitalisation, on peut entrer dans quel programme ?",
    "On peut bénéficier de Territoires Conseils de la Banque des Territoires ?",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium absent : apt-get install chromium (fait par .ci/run)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR", accept_downloads=True)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    context.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None)
    yield context
    context.close()
    assert not errors, f"erreurs JavaScript ou violations de la politique de sécurité : {errors}"


def shot(page, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def vague_question(assistant) -> tuple[str, str]:
    """A vague question and the value of its first quick reply, as the assistant answers today."""
    for question in VAGUE:
        first = assistant.chat(question)
        if first.kind == "clarification" and first.clarification.options:
            value = first.clarification.options[0][1]
            if assistant.chat(value, first.conversation_id).referrals:
                return question, first.clarification.options[0][0]
    pytest.fail("aucune des questions vagues ne déclenche plus de demande de précision")


def bot_messages(page):
    return page.locator("aiguillage-chat article.bot")


def ask(page, text: str) -> None:
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")


def watch_streaming(page) -> None:
    """Count how many times an answer bubble changes while it is marked busy (progressive rendering)."""
    page.evaluate("""() => {
      window.__paints = 0;
      const root = document.querySelector('aiguillage-chat').shadowRoot;
      new MutationObserver((records) => {
        for (const r of records) {
          const bot = r.target.closest && r.target.closest('article.bot');
          if (bot && bot.getAttribute('aria-busy') === 'true' && r.target.classList.contains('md')) window.__paints++;
        }
      }).observe(root, {childList: true, subtree: true});
    }""")


def test_mayor_asks_answers_a_clarification_gives_feedback_and_reloads(context, server, vague_question, assistant):
    question, option_label = vague_question
    page = context.new_page()
    page.goto(server.url + "/")
    page.locator(INPUT).wait_for()
    shot(page, "widget-page-accueil")

    # 1. a vague question: the assistant asks who we are, with quick replies
    watch_streaming(page)
    with page.expect_response("**/v1/chat/stream") as streamed:
        ask(page, question)
    assert streamed.value.headers["content-type"].startswith("text/event-stream")
    quick = page.locator("aiguillage-chat .quick button")
    quick.first.wait_for()
    assert quick.count() >= 2
    assert page.locator(INPUT).input_value() == ""

    # 2. answer it by clicking: the answer streams in, with offer cards under it
    page.locator("aiguillage-chat .quick button", has_text=option_label).click()
    answer = bot_messages(page).nth(1)
    answer.locator(".feedback").wait_for()
    assert page.evaluate("window.__paints") >= 2, "la réponse n'a pas été affichée progressivement"
    assert answer.get_attribute("aria-busy") is None
    assert page.locator("aiguillage-chat .quick").count() == 0  # used quick replies go away
    cards = answer.locator(".card")
    assert cards.count() >= 1
    first_card = cards.first
    assert first_card.locator(".card-partner").inner_text().strip()
    assert first_card.locator("h3").inner_text().strip()
    # the cards say it all: the per-offer text is folded, one click away
    detail = answer.locator("details.more")
    assert detail.count() == 1 and detail.get_attribute("open") is None
    detail.locator("summary").click()
    assert "Pour démarrer" in detail.inner_text()
    assert first_card.locator(".badge").first.inner_text().strip().lower() in {"éligible", "éligibilité à vérifier", "non éligible"}
    assert first_card.locator("dt", has_text="Pour démarrer").count() == 1
    assert first_card.locator("a.official").get_attribute("href").startswith("http")
    assert answer.locator(".md h3").count() >= 1 and answer.locator(".md strong").count() >= 1
    shot(page, "widget-page-reponse")

    # 3. thumbs down with a reason
    answer.locator("button.vote-down").click()
    answer.locator("label", has_text="Mauvais territoire").click()
    answer.locator("fieldset textarea").fill("Nous sommes dans le Cantal, pas en Île-de-France.")
    shot(page, "widget-page-avis-negatif")
    answer.locator("button", has_text="Envoyer mon avis").click()
    answer.locator(".feedback .done", has_text="Merci pour votre retour").wait_for()
    assert answer.locator("button.vote-down").get_attribute("aria-pressed") == "true"

    conversation = page.evaluate("""() => Object.entries(localStorage)
        .find(([k]) => k.endsWith(':conversation'))[1]""")
    detail = __import__("assistant.console", fromlist=["conversation_detail"]).conversation_detail(assistant.db, conversation)
    feedback = detail["messages"][1]["feedback"]
    assert [(f["rating"], f["reason"]) for f in feedback] == [("down", "mauvais-territoire")]

    # 4. reload: the conversation is still there
    page.reload()
    bot_messages(page).nth(1).locator(".card").first.wait_for()
    assert page.locator("aiguillage-chat .user .bubble").first.inner_text() == question
    assert bot_messages(page).count() == 2
    restored = bot_messages(page).nth(1)
    assert restored.locator("button.vote-down").get_attribute("aria-pressed") == "true"

    # 5. at 320 px wide, nothing overflows sideways
    page.set_viewport_size(NARROW)
    page.reload()
    bot_messages(page).nth(1).locator(".card").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shot(page, "widget-page-320px")

    # 6. nouvelle conversation
    page.set_viewport_size(DESKTOP)
    page.locator("aiguillage-chat button", has_text="Nouvelle conversation").click()
    assert bot_messages(page).count() == 0
    assert page.locator("aiguillage-chat .welcome").is_visible()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.endsWith(':conversation')).length") == 0


def test_errors_are_explained_in_french_and_the_question_is_kept(context, server):
    page = context.new_page()
    page.goto(server.url + "/")
    question = "Quelle aide pour moderniser l'éclairage public de la commune ?"

    page.route("**/v1/chat/stream", lambda route: route.abort("internetdisconnected"))
    ask(page, question)
    alert = page.locator("aiguillage-chat .alert")
    alert.wait_for()
    assert "Connexion au service impossible" in alert.inner_text()
    assert page.locator(INPUT).input_value() == question
    assert bot_messages(page).count() == 0

    page.unroute("**/v1/chat/stream")
    page.route("**/v1/chat/stream", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "12"}, content_type="application/json",
        body='{"detail": "Trop de demandes en peu de temps. Patientez 12 secondes puis réessayez."}'))
    alert.locator("button", has_text="Réessayer").click()
    page.locator("aiguillage-chat .alert", has_text="Patientez 12 secondes").wait_for()
    assert page.locator(INPUT).input_value() == question

    page.unroute("**/v1/chat/stream")
    page.route("**/v1/chat/stream", lambda route: route.fulfill(status=503, content_type="application/json", body="{}"))
    alert.locator("button", has_text="Réessayer").click()
    page.locator("aiguillage-chat .alert", has_text="problème momentané").wait_for()
    shot(page, "widget-erreur")

    page.unroute("**/v1/chat/stream")
    alert.locator("button", has_text="Réessayer").click()
    bot_messages(page).first.locator(".feedback").wait_for()
    assert page.locator("aiguillage-chat .alert").is_hidden()
    assert page.locator(INPUT).input_value() == ""
    assert bot_messages(page).first.locator(".card").count() >= 1


def test_one_script_tag_embeds_a_floating_widget(context, server):
    host = server.url + "/mairie-exemple.html"
    html = f"""<!doctype html><html lang="fr"><head><meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1"><title>Mairie d'Exemple</title></head>
      <body style="font-family: Georgia, serif; margin: 2rem"><h1>Mairie d'Exemple</h1>
      <p>Bienvenue sur le site de la commune.</p>
      <script src="{server.url}/widget.js" data-api="{server.url}" data-insee="15187" defer></script></body></html>"""
    page = context.new_page()
    page.route(host, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html))
    page.goto(host)
    launcher = page.locator("aiguillage-chat button.launcher")
    launcher.wait_for()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.locator("aiguillage-chat section.panel").is_hidden()

    launcher.focus()
    page.keyboard.press("Enter")
    panel = page.locator("aiguillage-chat section.panel")
    panel.wait_for()
    assert launcher.get_attribute("aria-expanded") == "true" and panel.get_attribute("role") == "dialog"
    assert page.evaluate("document.querySelector('aiguillage-chat').shadowRoot.activeElement.tagName") == "TEXTAREA"

    with page.expect_request("**/v1/chat/stream") as sent:
        ask(page, "Nous voulons rénover l'école communale.")
    assert sent.value.post_data_json["insee"] == "15187"
    answer = bot_messages(page).first
    answer.locator(".feedback").wait_for()
    shot(page, "widget-flottant-bureau")

    page.keyboard.press("Escape")
    assert panel.is_hidden()
    assert page.evaluate("document.querySelector('aiguillage-chat').shadowRoot.activeElement.className").find("launcher") >= 0

    page.set_viewport_size(NARROW)
    launcher.click()
    panel.wait_for()
    box = panel.bounding_box()
    assert box["width"] <= 320 and box["x"] >= 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shot(page, "widget-flottant-320px")


def test_agent_finds_corrects_and_exports_a_conversation(context, server, agent_token, assistant):
    # a mayor's conversation with a 👎, made through the API as the widget would
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as http:
        body = http.post("/v1/chat", json={"message": "Notre village de Murat veut installer une chaufferie bois pour l'école et la mairie."}).json()
        conversation = body["conversation_id"]
        assert http.post("/v1/feedback", json={"conversation_id": conversation, "message_id": body["message_id"],
                                               "rating": "down", "reason": "mauvais-partenaire"}).status_code == 201
        # a request without a token is refused
        assert http.get("/v1/conversations").status_code == 401
        assert http.get(f"/v1/conversations/{conversation}").status_code == 401
        assert http.get("/v1/exports/conversations.csv").status_code == 401

    page = context.new_page()
    assert page.request.get(server.url + "/v1/conversations").status == 401
    page.goto(server.url + "/console")
    page.locator("#token").wait_for()
    assert page.locator("#view-conversations").is_hidden()  # no token, no data

    page.fill("#token", "aig_faux-jeton")
    page.click("text=Se connecter")
    page.locator("#login-error", has_text="Jeton invalide").wait_for()

    page.fill("#token", agent_token)
    page.click("text=Se connecter")
    page.locator("#list tbody tr").first.wait_for()
    assert "Agent de test" in page.locator("#who-name").inner_text()

    # find it by filter: negative feedback + words of the question
    page.select_option("#f-feedback", "down")
    page.fill("#f-q", "chaufferie bois")
    page.click("#filters button[type=submit]")
    row_link = page.locator("#list tbody a", has_text="chaufferie bois")
    row_link.first.wait_for()
    page.wait_for_function("document.querySelectorAll('#list tbody tr').length === 1")
    shot(page, "console-liste")

    row_link.first.click()
    page.locator("#review-form").wait_for()
    page.locator("details summary", has_text="Offres retrouvées").first.click()
    assert page.locator(".turn .table th", has_text="Rang BM25").count() >= 1
    assert page.locator(".feedback-item", has_text="Mauvais partenaire").count() == 1
    assert page.locator("#profile-title").is_visible()

    # correct it: ADEME's heat fund as the main offer, a note
    page.locator("label.choice", has_text="Corriger").click()
    preset = page.locator(".picker .option.chosen select")  # the proposed offers come preselected
    while preset.count():
        preset.first.select_option("")
    page.fill("#r-search", "chaleur")
    target = page.locator(".picker select[data-offer^='ademe-']").first
    target.wait_for()
    chosen = target.get_attribute("data-offer")
    target.select_option("primary")
    page.fill("#r-note", "Chaufferie bois : Fonds chaleur de l'ADEME d'abord.")
    shot(page, "console-detail", full_page=True)
    page.click("text=Enregistrer la relecture")
    page.locator(".review li", has_text="Agent de test").wait_for()
    assert page.locator("#detail .badge", has_text="Corrigée").count() >= 1

    reviews = __import__("assistant.console", fromlist=["conversation_detail"]).conversation_detail(assistant.db, conversation)["reviews"]
    assert reviews[-1]["status"] == "corrected" and reviews[-1]["primary"] == [chosen]

    # back to the list, filter on corrected reviews, export CSV
    page.click("text=← Retour à la liste")
    page.select_option("#f-review", "corrected")
    page.click("#filters button[type=submit]")
    page.wait_for_function("[...document.querySelectorAll('#list tbody tr')].some(r => r.textContent.includes('Corrigée'))")
    with page.expect_download() as downloaded:
        page.click("#export-csv")
    text = Path(downloaded.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [r["conversation_id"] for r in rows] == [conversation]
    assert rows[0]["statut_revue"] == "corrected" and rows[0]["avis_negatifs"] == "1"

    with page.expect_download() as gold:
        page.click("#export-gold")
    assert chosen in Path(gold.value.path()).read_text(encoding="utf-8")

    # statistics and unmet needs
    page.click("#tabs a[data-tab=stats]")
    page.locator("#stats figure svg").first.wait_for()
    assert page.locator("#stats figure").count() == 4
    shot(page, "console-statistiques", full_page=True)
    page.click("#tabs a[data-tab=unmet]")
    page.locator("#unmet a", has_text="chaufferie bois").first.wait_for()
    shot(page, "console-besoins-non-couverts", full_page=True)

    # logging out removes the token: data routes answer 401 again, the page shows the login form
    page.click("#logout")
    page.locator("#login").wait_for()
    assert page.evaluate("sessionStorage.getItem('aiguillage-console-token')") is None
