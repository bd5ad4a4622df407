"""An INSEE code that names no commune (the widget's data-insee, the API's `insee`) is never silently
ignored: the question is answered, and the answer opens with a French notice that quotes the code and
says the territory is not taken into account. Codes generated from the territory tables: well-formed
codes absent from them, and real codes bent out of shape. Through a real server on 127.0.0.1."""

from __future__ import annotations

import json

from api.models import MAX_INSEE_CHARS
from assistant.territory import Territories
from tests.conftest import CORPUS

QUESTION = "Nous voulons rénover l'éclairage public de la commune, quelles aides ?"


def invalid_codes() -> list[str]:
    """Per département of the tables (the first three in code order, and Corsica): the first well-formed
    code after its communes that the tables do not know; and one real commune code bent out of shape
    (a digit short, a digit more, a space inside, a letter, a letter for Corsica's 2A)."""
    tables = Territories.load(CORPUS)
    known = set(tables.communes)
    codes = ["99999", "00000"]
    departements = sorted({c[:2] for c in known if c[:2] not in {"97", "98"}})
    for departement in departements[:3] + ["2A"]:
        codes.append(next(f"{departement}{n:03d}" for n in range(999, 0, -1) if f"{departement}{n:03d}" not in known))
    real = sorted(c for c in known if c.isdigit())[100]
    corsica = sorted(c for c in known if c.startswith("2A"))[0]
    codes += [real[:4], real + "0", f"{real[:2]} {real[2:]}", real[:4] + "X", "2C" + corsica[2:]]
    assert not known & set(codes)
    return codes


def test_a_code_that_names_no_commune_is_quoted_in_a_notice_and_the_question_is_answered(http):
    for code in invalid_codes():
        response = http.post("/v1/chat", json={"message": QUESTION, "insee": code})
        assert response.status_code == 200, (code, response.text)
        body = response.json()
        assert body["answer"].startswith(f"Le code INSEE « {code} » ne correspond à aucune commune connue"), (code, body["answer"][:200])
        assert body["profile"]["insee"] is None and body["profile"]["departement_code"] is None, code
        assert body["kind"] == "answer" and body["referrals"], code  # the question is not lost: it is answered


def test_a_known_code_gets_no_notice(http):
    """Read as the widget reads its data-insee (trimmed, upper case); a blank code is no code."""
    for given, known in (("15187", "15187"), (" 2a004 ", "2A004"), ("", None)):
        body = http.post("/v1/chat", json={"message": QUESTION, "insee": given}).json()
        assert body["profile"]["insee"] == known and "Le code INSEE" not in body["answer"], given


def test_the_stream_opens_with_the_same_notice(http):
    with http.stream("POST", "/v1/chat/stream", json={"message": QUESTION, "insee": "99999"}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    done = json.loads(lines[-1].removeprefix("data:").strip())
    assert done["answer"].startswith("Le code INSEE « 99999 » ne correspond à aucune commune connue")


def test_a_value_too_long_to_be_a_mistyped_code_is_refused_in_french(http):
    response = http.post("/v1/chat", json={"message": QUESTION, "insee": "1" * (MAX_INSEE_CHARS + 1)})
    assert response.status_code == 422 and "insee" in response.json()["detail"] and "caractères au plus" in response.json()["detail"]
