"""The public API over a real HTTP server on 127.0.0.1."""

import json
import re

import pytest


def test_health_and_readiness(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_chat_returns_referrals_and_citations_for_a_mayor(http):
    body = http.post("/v1/chat", json={"message": "Ma commune de 800 habitants veut rénover l'école, qui peut nous aider ?"}).json()
    assert body["kind"] == "answer" and body["generator"] == "grounded"
    assert 1 <= len(body["referrals"]) <= 4  # three offers, and the everyday grant's own place when they fill them
    assert "etat-detr" in {r["offer_id"] for r in body["referrals"]}  # an investment project of a commune
    cited = {c["offer_id"] for c in body["citations"]}
    for referral in body["referrals"]:
        assert referral["offer_id"] in cited and referral["url"].startswith("http")
        assert f"[{referral['title']}]({referral['url']})" in body["answer"]  # the citation is a link on the name
    assert body["profile"]["population"] == 800


def prose(markdown: str) -> str:
    """The words a reader sees: markdown links reduced to their label."""
    return re.sub(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)", r"\1", markdown)


@pytest.mark.parametrize("question", [
    "Ma commune de 800 habitants veut rénover l'école, qui peut nous aider ?",
    "Notre intercommunalité veut une étude sur les friches industrielles, qui finance ?",
    "Commune de 3 000 habitants dans le Cantal, on veut moderniser l'éclairage public",
])
def test_answer_starts_with_what_to_do_and_shows_no_raw_id_or_address(http, question):
    body = http.post("/v1/chat", json={"message": question}).json()
    assert body["kind"] == "answer"
    best = body["referrals"][0]
    first_lines = body["answer"].split("\n\n")[0]
    assert first_lines.startswith("**Par où commencer**") and best["title"] in first_lines
    assert "**Prochaine étape**" in first_lines and best["fit"] in first_lines
    seen = prose(body["answer"])
    assert not re.search(r"https?://", seen), "no address in the prose: links are on names"
    for referral in body["referrals"]:
        assert f"[{referral['offer_id']}]" not in seen
        assert referral["fit"] and referral["entry_point"] and isinstance(referral["figures"], list)

    text = http.post("/v1/chat", json={"message": question, "format": "text"}).json()["answer"]
    assert "**" not in text and "###" not in text and not re.search(r"https?://|\]\(", text)
    assert best["title"] in text
    cited = http.post("/v1/chat", json={"message": question, "format": "cited"}).json()
    assert f"[{best['offer_id']}]" in cited["answer"] and "](" not in cited["answer"]
    bad = http.post("/v1/chat", json={"message": question, "format": "html"})
    assert bad.status_code == 422 and "format" in bad.json()["detail"]


def test_chat_rejects_empty_and_oversized_messages(http):
    empty = http.post("/v1/chat", json={"message": "   "})
    assert empty.status_code == 422 and "vide" in empty.json()["detail"]
    long = http.post("/v1/chat", json={"message": "é" * 2001})
    assert long.status_code == 422 and "trop long" in long.json()["detail"]
    missing = http.post("/v1/chat", json={})
    assert missing.status_code == 422 and "message" in missing.json()["detail"]


def test_out_of_scope_question_gets_a_door_and_no_offer(http):
    body = http.post("/v1/chat", json={"message": "Comment contester mes impôts sur le revenu ?"}).json()
    assert body["kind"] == "refusal" and body["referrals"] == [] and body["citations"] == []
    assert "service-public.fr" in body["answer"]


def test_search_returns_breakdown_and_validates_filters(http):
    body = http.post("/v1/search", json={"query": "friche industrielle", "filters": {"partner": ["cerema"]}, "limit": 5}).json()
    assert body["results"] and all(r["partner"] == "cerema" for r in body["results"])
    assert {"bm25_rank", "dense_rank", "score"} <= set(body["results"][0])
    bad = http.post("/v1/search", json={"query": "friche", "filters": {"theme": ["licornes"]}})
    assert bad.status_code == 422 and "licornes" in bad.json()["detail"]
    bad_partner = http.post("/v1/search", json={"query": "friche", "filters": {"partner": ["nasa"]}})
    assert bad_partner.status_code == 422


def test_offers_listing_detail_and_unknown_id(http):
    page = http.get("/v1/offers", params={"partner": "anah", "limit": 5}).json()
    assert page["total"] >= 14 and len(page["items"]) == 5
    card = http.get("/v1/offers/anct-ingenierie-sur-mesure").json()
    assert {"id", "partner", "title", "summary", "themes", "eligibility", "status", "source_urls"} <= set(card)
    missing = http.get("/v1/offers/n-existe-pas")
    assert missing.status_code == 404 and "inconnue" in missing.json()["detail"]
    merged = http.get("/v1/offers/cerema-villages-d-avenir")  # old id of a merged card: old links still work
    assert merged.status_code == 200 and merged.json()["id"] == "anct-villages-d-avenir"
    assert {p["id"] for p in http.get("/v1/partners").json()} >= {"anct", "ademe", "cerema", "anru", "anah", "banque-des-territoires"}


def test_openapi_documents_the_v1_routes(http):
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/chat", "/v1/search", "/v1/offers", "/v1/offers/{offer_id}", "/v1/partners"} <= set(paths)


def test_chat_page_is_served_in_french(http):
    page = http.get("/")
    assert page.status_code == 200 and 'lang="fr"' in page.text


def test_a_citation_split_across_stream_deltas_becomes_one_link():
    from assistant.answer import StreamFormatter

    offers = {"bdt-edurenov": ("EduRénov", "https://www.banquedesterritoires.fr/edurenov")}
    formatter = StreamFormatter(offers)
    pieces = [formatter.feed(d) for d in ["Voyez [bdt-ed", "urenov] et ", "[un crochet ouvert"]] + [formatter.flush()]
    assert "".join(pieces) == "Voyez [EduRénov](https://www.banquedesterritoires.fr/edurenov) et [un crochet ouvert"
    assert pieces[0] == "Voyez "  # nothing half-made is sent


@pytest.mark.parametrize("blank", [" ", "\u00a0\u202f", "\u001f", "\u001d\u001d", "\ufeff", "\t\u0085\n"])
def test_a_question_without_a_visible_character_is_refused_as_the_spec_says(http, blank):
    """Blank, control-only or BOM-only text: French 422 on both question routes, and the spec's pattern agrees."""
    import re

    spec = http.get("/openapi.json").json()["components"]["schemas"]
    for route, body, schema in (("/v1/chat", {"message": blank}, ("ChatRequest", "message")),
                                ("/v1/search", {"query": blank}, ("SearchRequest", "query"))):
        response = http.post(route, json=body)
        assert response.status_code == 422 and "vide" in response.json()["detail"]
        assert not re.search(spec[schema[0]]["properties"][schema[1]]["pattern"], blank)
    assert http.post("/v1/search", json={"query": "\u001féclairage"}).status_code == 200


SCHOOL = "Quelle aide pour rénover l'école ?"


@pytest.mark.parametrize(("message", "profile"), [
    (SCHOOL, {"epci_name": "Communauté \ud83c"}),  # a lone surrogate, as JSON's « \ud83c » escape delivers it
    ("\ud83c\u0123 " + SCHOOL, None),  # in the message (schemathesis: « \ud83c\u0123 »)
    (SCHOOL, {"population": -(2**105)}),  # beyond 64 bits
    (SCHOOL, {"population": 2**64, "region_name": "\udfff"}),
], ids=["surrogate-in-profile", "surrogate-in-message", "negative-big-int", "big-int-and-surrogate"])
def test_what_json_holds_is_answered_and_kept(http, message, profile):
    """Whatever JSON can hold in a message or a profile is answered, not a 500, and the turn is kept:
    the JSON columns' fast writer (orjson) refuses lone surrogates and integers beyond 64 bits, which
    json.dumps writes (schemathesis on CI of a080db2: 500 on POST /v1/chat)."""
    payload = json.dumps({"message": message, "profile": profile})  # \u escapes, as a browser may send them
    body = http.post("/v1/chat", content=payload, headers={"content-type": "application/json"})
    assert body.status_code in (200, 422), body.text  # 422: a field the API refuses, in French
    if body.status_code == 200:
        conversation = body.json()["conversation_id"]
        follow = http.post("/v1/chat", json={"message": "Et pour la cantine ?", "conversation_id": conversation})
        assert follow.status_code == 200 and follow.json()["conversation_id"] == conversation
