"""Streaming, feedback, conversation restore and the agents' console API, over a real server."""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx
import pytest

SCHOOL = "Ma commune de 800 habitants veut rénover l'école, qui peut nous aider ?"
NOTHING = "Comment organiser un festival de licornes sur la lune ?"


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs (comments and pings skipped)."""
    events, name, data = [], "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return events


def stream(http, **body) -> list[tuple[str, dict]]:
    with http.stream("POST", "/v1/chat/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse(response)


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def school(http) -> list[tuple[str, dict]]:
    return stream(http, message=SCHOOL)


def test_stream_sends_meta_then_deltas_then_done(school):
    names = [n for n, _ in school]
    assert names[0] == "meta" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    meta, done = school[0][1], school[-1][1]
    assert meta["kind"] == "answer" and 1 <= len(meta["referrals"]) <= 4  # the everyday grant may take its own place
    assert {"conversation_id", "message_id", "not_eligible", "citations", "clarification", "profile"} <= set(meta)
    assert "answer" not in meta
    streamed = "".join(d["text"] for n, d in school if n == "delta")
    assert streamed.strip() == done["answer"].strip()
    assert done["conversation_id"] == meta["conversation_id"] and done["message_id"] == meta["message_id"] == 1
    assert [r["offer_id"] for r in done["referrals"]] == [r["offer_id"] for r in meta["referrals"]]


def test_stream_validates_like_chat(http):
    assert http.post("/v1/chat/stream", json={"message": "  "}).status_code == 422
    bad_id = http.post("/v1/chat/stream", json={"message": "école", "conversation_id": "x"})
    assert bad_id.status_code == 422


def test_stream_continues_a_conversation_and_restore_returns_it(http, school):
    conversation = school[0][1]["conversation_id"]
    events = stream(http, message="et pour l'éclairage public ?", conversation_id=conversation)
    assert events[-1][1]["message_id"] == 2
    restored = http.get(f"/v1/conversations/{conversation}/public").json()
    assert restored["conversation_id"] == conversation
    assert [m["message_id"] for m in restored["messages"]] == [1, 2]
    assert restored["messages"][0]["message"] == SCHOOL and restored["messages"][0]["referrals"]
    assert "retrieved" not in restored["messages"][0]  # scores stay for agents
    assert http.get(f"/v1/conversations/{uuid.uuid4()}/public").status_code == 404


def test_feedback_is_stored_and_validated(http, school):
    conversation = school[0][1]["conversation_id"]
    ok = http.post("/v1/feedback", json={"conversation_id": conversation, "message_id": 1, "rating": "up"})
    assert ok.status_code == 201 and ok.json()["message"] == "Merci pour votre retour."
    down = http.post("/v1/feedback", json={
        "conversation_id": conversation, "message_id": 1, "rating": "down", "reason": "mauvais-territoire",
        "comment": "Nous sommes en Corse"})
    assert down.status_code == 201
    unknown = http.post("/v1/feedback", json={"conversation_id": str(uuid.uuid4()), "message_id": 1, "rating": "up"})
    assert unknown.status_code == 404 and "inconnue" in unknown.json()["detail"]
    no_turn = http.post("/v1/feedback", json={"conversation_id": conversation, "message_id": 99, "rating": "up"})
    assert no_turn.status_code == 404
    for bad in ({"rating": "bof"}, {"rating": "down", "reason": "trop-cher"}, {"rating": "up", "extra": 1}):
        response = http.post("/v1/feedback", json={"conversation_id": conversation, "message_id": 1, **bad})
        assert response.status_code == 422, bad
    restored = http.get(f"/v1/conversations/{conversation}/public").json()
    assert restored["messages"][0]["feedback"] == "down"


CONSOLE_ROUTES = [
    "/v1/conversations", "/v1/conversations/{id}", "/v1/exports/conversations.csv", "/v1/exports/gold.jsonl",
    "/v1/stats", "/v1/unmet-needs", "/v1/me", "/v1/themes",
]


@pytest.mark.parametrize("route", CONSOLE_ROUTES)
def test_console_routes_refuse_requests_without_a_valid_token(http, school, route):
    path = route.replace("{id}", school[0][1]["conversation_id"])
    for headers in ({}, auth("aig_not-a-token"), {"Authorization": "Basic YWdlbnQ6YWdlbnQ="}):
        response = http.get(path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert "jeton" in response.json()["detail"]
    review = http.post(f"/v1/conversations/{school[0][1]['conversation_id']}/reviews", json={"status": "validated"})
    assert review.status_code == 401


def test_revoked_token_is_refused(http, assistant):
    from assistant.auth import create_token, revoke_token

    secret, row = create_token(assistant.db, "Agent parti", "agent")
    assert http.get("/v1/me", headers=auth(secret)).json() == {"name": "Agent parti", "role": "agent"}
    assert revoke_token(assistant.db, row.id)
    assert http.get("/v1/me", headers=auth(secret)).status_code == 401


def test_tokens_are_stored_hashed(assistant):
    from sqlalchemy import select

    from assistant.auth import create_token
    from assistant.store import ApiToken

    secret, row = create_token(assistant.db, "Haché", "agent")
    with assistant.db.session() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.id == row.id))
        assert secret not in stored.token_hash and len(stored.token_hash) == 64


def test_list_filters_and_detail(http, school, agent_token):
    conversation = school[0][1]["conversation_id"]
    listing = http.get("/v1/conversations", headers=auth(agent_token), params={"q": "rénover l'école", "limit": 50}).json()
    assert conversation in [c["id"] for c in listing["items"]]
    item = next(c for c in listing["items"] if c["id"] == conversation)
    assert item["population"] == 800 and item["offers"] and item["partners"]
    partner = item["partners"][0]
    by_partner = http.get("/v1/conversations", headers=auth(agent_token), params={"partner": partner, "limit": 200}).json()
    assert conversation in [c["id"] for c in by_partner["items"]]
    assert all(partner in c["partners"] for c in by_partner["items"])
    other = http.get("/v1/conversations", headers=auth(agent_token), params={"partner": "anru", "q": "rénover l'école"}).json()
    assert conversation not in [c["id"] for c in other["items"]] or "anru" in item["partners"]
    down = http.get("/v1/conversations", headers=auth(agent_token), params={"feedback": "down", "limit": 200}).json()
    assert conversation in [c["id"] for c in down["items"]]
    future = http.get("/v1/conversations", headers=auth(agent_token), params={"date_from": "2999-01-01"}).json()
    assert future["total"] == 0 and future["items"] == []
    page = http.get("/v1/conversations", headers=auth(agent_token), params={"limit": 1, "offset": 0}).json()
    assert len(page["items"]) == 1 and page["total"] >= 1
    bad = http.get("/v1/conversations", headers=auth(agent_token), params={"review": "peut-etre"})
    assert bad.status_code == 422

    detail = http.get(f"/v1/conversations/{conversation}", headers=auth(agent_token)).json()
    first = detail["messages"][0]
    assert detail["profile"]["population"] == 800
    assert first["answer"] and first["referrals"]
    retrieved = first["retrieved"][0]
    assert {"offer_id", "bm25_rank", "dense_rank", "fused_score", "eligibility"} <= set(retrieved)
    assert retrieved["eligibility"]["status"] in {"eligible", "ineligible", "unknown"}
    assert {f["reason"] for f in first["feedback"]} >= {"mauvais-territoire"}
    missing = http.get(f"/v1/conversations/{uuid.uuid4()}", headers=auth(agent_token))
    assert missing.status_code == 404


def test_review_correction_and_gold_export(http, agent_token):
    conversation = stream(http, message=SCHOOL)[0][1]["conversation_id"]
    unknown_offer = http.post(f"/v1/conversations/{conversation}/reviews", headers=auth(agent_token),
                              json={"status": "corrected", "primary": ["anct-n-existe-pas"]})
    assert unknown_offer.status_code == 422 and "anct-n-existe-pas" in unknown_offer.json()["detail"]
    too_many = http.post(f"/v1/conversations/{conversation}/reviews", headers=auth(agent_token),
                         json={"status": "corrected", "primary": ["etat-detr", "etat-dsil", "anct-ingenierie-sur-mesure"]})
    assert too_many.status_code == 422
    review = http.post(f"/v1/conversations/{conversation}/reviews", headers=auth(agent_token), json={
        "status": "corrected", "primary": ["etat-fonds-vert-renovation-batiments-publics"],
        "acceptable": ["etat-detr"], "note": "Le Fonds vert d'abord."})
    assert review.status_code == 201
    assert review.json()["reviewer"] == "Agent de test" and review.json()["message_id"] == 1
    detail = http.get(f"/v1/conversations/{conversation}", headers=auth(agent_token)).json()
    assert detail["review_status"] == "corrected" and detail["reviews"][-1]["note"] == "Le Fonds vert d'abord."
    corrected = http.get("/v1/conversations", headers=auth(agent_token), params={"review": "corrected", "limit": 200}).json()
    assert conversation in [c["id"] for c in corrected["items"]]

    export = http.get("/v1/exports/gold.jsonl", headers=auth(agent_token))
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    cases = [json.loads(line) for line in export.text.splitlines()]
    case = next(c for c in cases if c["turns"] == [SCHOOL] and c["expected"]["acceptable"] == ["etat-detr"])
    assert set(case) == {"id", "split", "kind", "persona", "turns", "expected", "checks", "notes"}
    assert case["kind"] == "single" and case["split"] in {"dev", "test"} and case["checks"] == []
    assert case["expected"] == {"primary": ["etat-fonds-vert-renovation-batiments-publics"], "acceptable": ["etat-detr"],
                                "partners": ["etat"]}
    assert "Le Fonds vert d'abord." in case["notes"] and "800 habitants" in case["persona"]


def test_validation_keeps_the_proposed_offers(http, agent_token):
    events = stream(http, message=SCHOOL)
    conversation, proposed = events[0][1]["conversation_id"], [r["offer_id"] for r in events[0][1]["referrals"]]
    review = http.post(f"/v1/conversations/{conversation}/reviews", headers=auth(agent_token), json={"status": "validated"}).json()
    assert review["primary"] == proposed[:2] and review["acceptable"] == proposed[2:]


def test_csv_export_of_the_filtered_list(http, school, agent_token):
    response = http.get("/v1/exports/conversations.csv", headers=auth(agent_token), params={"q": "rénover l'école"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=";"))
    assert school[0][1]["conversation_id"] in [r["conversation_id"] for r in rows]
    assert all("école" in r["premier_message"] for r in rows)


def test_conversation_ids_read_the_same_in_the_csv_export():
    """An id starting with « - » or « _ » would be exported « '-… » (formula guard): one in 32 would,
    so 2,000 draws meet one unless ids start with a letter or digit."""
    from assistant.console import _cell
    from assistant.store import new_conversation_id

    ids = [new_conversation_id() for _ in range(2000)]
    assert all(_cell(i) == i and len(i) == 32 for i in ids) and len(set(ids)) == len(ids)


def test_csv_cells_cannot_start_a_formula():
    from assistant.console import _cell

    assert _cell("=HYPERLINK(\"http://x\")").startswith("'=") and _cell("Une école") == "Une école"


def test_stats_and_unmet_needs(http, school, agent_token):
    unmet_turn = stream(http, message=NOTHING)
    assert unmet_turn[-1][1]["kind"] in {"no_match", "refusal"}
    stats = http.get("/v1/stats", headers=auth(agent_token), params={"granularity": "day"}).json()
    assert stats["totals"]["referrals"] >= 1 and stats["by_partner"] and stats["by_theme"] and stats["series"]
    assert sum(p["count"] for p in stats["by_partner"]) == stats["totals"]["referrals"]
    assert http.get("/v1/stats", headers=auth(agent_token), params={"granularity": "year"}).status_code == 422
    unmet = http.get("/v1/unmet-needs", headers=auth(agent_token)).json()
    questions = [q for g in unmet["groups"] for q in g["questions"]]
    # the 👎 on the school answer is an unmet need, with its reason
    school_q = next(q for q in questions if q["conversation_id"] == school[0][1]["conversation_id"])
    assert any("mauvais territoire" in r for r in school_q["reasons"])
    assert all({"theme_label", "departement_label", "count"} <= set(g) for g in unmet["groups"])
    if unmet_turn[-1][1]["kind"] == "no_match":
        assert any(q["message"] == NOTHING and "aucune offre éligible" in q["reasons"] for q in questions)


def test_only_admins_erase_conversations(http, agent_token, admin_token):
    conversation = stream(http, message="Quelle aide pour l'éclairage public ?")[0][1]["conversation_id"]
    assert http.delete(f"/v1/conversations/{conversation}", headers=auth(agent_token)).status_code == 403
    assert http.delete(f"/v1/conversations/{conversation}").status_code == 401
    assert http.delete(f"/v1/conversations/{conversation}", headers=auth(admin_token)).status_code == 204
    assert http.get(f"/v1/conversations/{conversation}/public").status_code == 404


def test_console_and_widget_pages_are_served(http):
    page = http.get("/console")
    assert page.status_code == 200 and 'lang="fr"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in http.get("/").headers["content-security-policy"]
    script = http.get("/widget.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "customElements.define" in script.text


def test_stream_stops_the_turn_when_the_client_leaves():
    """After a disconnect the turn's generator is closed at the next step: nothing more is generated or stored."""
    import asyncio

    from api.routes.stream import sse_events

    steps: list[str] = []

    def turn():
        try:
            steps.append("prepare")
            yield "delta", "première partie"
            steps.append("generate")
            yield "delta", "suite"
            steps.append("persist")
        finally:
            steps.append("closed")

    class Request:
        def __init__(self):
            self.calls = 0

        async def is_disconnected(self) -> bool:
            self.calls += 1
            return self.calls > 1  # the client leaves after the first event

    async def consume() -> list:
        return [event async for event in sse_events(turn(), Request())]

    events = asyncio.run(consume())
    assert [e.event for e in events] == ["delta"]
    assert steps == ["prepare", "closed"]


def test_stream_reports_failures_as_an_error_event():
    import asyncio

    from api.routes.stream import ERROR_TEXT, sse_events

    def turn():
        yield "delta", "début"
        raise RuntimeError("boom")

    class Request:
        async def is_disconnected(self) -> bool:
            return False

    async def consume() -> list:
        return [event async for event in sse_events(turn(), Request())]

    events = asyncio.run(consume())
    assert [e.event for e in events] == ["delta", "error"]
    assert json.loads(events[-1].data) == {"detail": ERROR_TEXT}


def test_departement_filter_takes_a_code_or_a_name(http, agent_token, school):
    from assistant.console import departement_code
    from assistant.territory import Territories
    from tests.conftest import CORPUS

    departements = Territories.load(CORPUS).departements
    for departement in departements.values():  # every département, by code and by name, any case
        assert departement_code(departement.code, departements) == departement.code
        assert departement_code(departement.name.upper(), departements) == departement.code
    assert departement_code("corse du sud", departements) == "2A" and departement_code("1", departements) == "01"
    by_code = http.get("/v1/conversations", params={"departement": "15"}, headers=auth(agent_token)).json()
    by_name = http.get("/v1/conversations", params={"departement": "cantal"}, headers=auth(agent_token)).json()
    assert by_code == by_name
    unknown = http.get("/v1/conversations", params={"departement": "Atlantide"}, headers=auth(agent_token))
    assert unknown.status_code == 404 and "Département inconnu : « Atlantide »" in unknown.json()["detail"]


# Every number or boolean a request body takes, with a value of the wrong JSON type for it.
WRONG_TYPES = {
    ("/v1/chat", "profile.population"): ({"message": SCHOOL, "profile": {"population": True}}, {"message": SCHOOL, "profile": {"population": "800"}}),
    ("/v1/chat", "profile.works_amount_eur"): ({"message": SCHOOL, "profile": {"works_amount_eur": False}},),
    ("/v1/chat", "profile.funding_gap_eur"): ({"message": SCHOOL, "profile": {"funding_gap_eur": False}},),
    ("/v1/chat", "profile.opening_m"): ({"message": SCHOOL, "profile": {"opening_m": True}}, {"message": SCHOOL, "profile": {"opening_m": "1,8"}}),
    ("/v1/chat", "profile.works_amount_ht"): ({"message": SCHOOL, "profile": {"works_amount_ht": "oui"}}, {"message": SCHOOL, "profile": {"works_amount_ht": 1}}),
    ("/v1/search", "limit"): ({"query": "école", "limit": True}, {"query": "école", "limit": "5"}),
    ("/v1/feedback", "message_id"): ({"conversation_id": "{conversation}", "message_id": True, "rating": "up"},),
    ("/v1/conversations/{conversation}/reviews", "message_id"): ({"status": "validated", "message_id": True},),
}
WRONG_TYPES |= {("/v1/chat/stream", name): bodies for (route, name), bodies in WRONG_TYPES.items() if route == "/v1/chat"}


def _typed_properties(spec: dict, schema: dict, prefix: str = "") -> set[str]:
    """Dotted names of the integer, number and boolean properties of a request schema (refs followed)."""
    def resolve(node: dict) -> dict:
        return spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node

    found = set()
    for name, prop in resolve(schema).get("properties", {}).items():
        for option in [resolve(o) for o in prop.get("anyOf", [prop])]:
            if option.get("type") in {"integer", "number", "boolean"}:
                found.add(prefix + name)
            elif option.get("properties"):
                found |= _typed_properties(spec, option, f"{prefix}{name}.")
    return found


def test_request_bodies_refuse_a_boolean_or_text_where_a_number_is_expected(http, agent_token):
    """The kind schemathesis found (`"message_id": true` accepted as 1, `"funding_gap_eur": false` as 0):
    every number or boolean of every request body, as the OpenAPI schema lists them, refuses the wrong
    JSON type with a French 422, and the table above covers all of them."""
    spec = http.get("/openapi.json").json()
    listed = set()
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            route = path.replace("{conversation_id}", "{conversation}")
            listed |= {(route, name) for name in _typed_properties(spec, body["schema"])}
    assert listed == set(WRONG_TYPES), listed ^ set(WRONG_TYPES)
    # Bounds reach the schema as JSON Schema keywords (schemathesis sent message_id 0 when it read « ge »).
    assert '"ge":' not in json.dumps(spec) and '"le":' not in json.dumps(spec)

    conversation = stream(http, message=SCHOOL)[0][1]["conversation_id"]
    for (route, name), bodies in WRONG_TYPES.items():
        for body in bodies:
            body = json.loads(json.dumps(body).replace("{conversation}", conversation))
            response = http.post(route.replace("{conversation}", conversation), json=body, headers=auth(agent_token))
            assert response.status_code == 422, (route, name, body, response.status_code)
            assert name.rsplit(".", 1)[-1] in response.json()["detail"], response.json()
    # 1.0 is a JSON Schema integer (schemathesis sends it): accepted where an integer is expected.
    assert http.post("/v1/search", json={"query": "école", "limit": 5.0}).status_code == 200
    assert http.post("/v1/chat", json={"message": SCHOOL, "profile": {"population": 800.0}}).json()["profile"]["population"] == 800
