"""The everyday door (DETR/DSIL for investment projects) and the doors beyond the partners.

Cases are generated from the data files: 2018 DETR/DSIL titles of the départements the models were
not tuned on (evals/door_training.py), and evals/datasets/portes.csv.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

import pytest

from assistant.everyday import EverydayModel
from assistant.profile import Profile
from evals.door_training import tune_half
from evals.realdata import names_body

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
GRANTS = {"etat-detr", "etat-dsil"}
PER_CATEGORY = 8


def _read(name: str) -> list[dict]:
    with (DATASETS / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def _titles_by_category() -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in _read("dotations-2018-projets.csv"):
        if row["echelon"] in {"Commune", "EPCI"} and not tune_half(row["departement"]):
            groups[row["categorie"]].append(row)
    rng = random.Random(7)
    return {c: rng.sample(rows, PER_CATEGORY) for c, rows in sorted(groups.items())}


TITLES = _titles_by_category()
PORTES = _read("portes.csv")


def _ask(assistant, message: str, kind: str = "commune", departement: str = "15"):
    return assistant.chat(message, None, Profile(collectivity_type=kind, departement_code=departement))


@pytest.mark.parametrize("category", sorted(TITLES))
def test_real_project_titles_show_detr_or_dsil(assistant, category):
    shown = []
    for row in TITLES[category]:
        kind = "commune" if row["echelon"] == "Commune" else "epci"
        result = _ask(assistant, row["titre"], kind, row["departement"])
        shown.append(bool(GRANTS & {r.offer.id for r in result.referrals}))
    assert sum(shown) >= PER_CATEGORY - 2, [r["titre"] for r, s in zip(TITLES[category], shown) if not s]


def test_grant_is_ranked_in_the_breakdown_and_never_marked_eligible_without_the_facts(assistant):
    result = _ask(assistant, "Construction d'une cantine scolaire")
    grants = [r for r in result.referrals if r.offer.id in GRANTS]
    assert grants and all(r.hit.adjustments.get("everyday_door") for r in grants)
    assert all(r.verdict.status == "unknown" for r in grants)  # DETR's rules are conditions to check


def test_a_departement_gets_dsid_not_detr(assistant):
    result = _ask(assistant, "Réfection de la chaussée d'une route départementale et d'un collège", "department", "15")
    offers = {r.offer.id for r in result.referrals}
    assert "etat-dsid" in offers and not offers & GRANTS


def test_bridge_wall_repair_shows_the_grant_beside_the_bridge_offers(assistant):
    offers = [r.offer.id for r in _ask(assistant, "réparation mur du pont").referrals]
    assert GRANTS & set(offers)
    assert any(o.startswith("cerema-") and "pont" in o for o in offers)


def _titles_sharing_the_dsec_themes(assistant, size: int = 30) -> list[dict]:
    """Held-out 2018 commune titles in which the question reader finds a theme of the DSEC card
    (bridges, walls, roads; natural risks): the titles where a storm-damage offer shares a word."""
    from assistant.profile import extract_profile

    dsec = set(assistant.offers["etat-dsec"].themes)
    rows = [r for r in _read("dotations-2018-projets.csv") if r["echelon"] == "Commune" and not tune_half(r["departement"])]
    rows = [r for r in random.Random(11).sample(rows, 3000) if dsec & set(extract_profile(r["titre"], assistant.themes).themes)]
    return rows[:size]


def test_offers_whose_event_the_title_does_not_show_rank_after_the_grants(assistant):
    """Real 2018 titles (held-out départements): an offer that serves only after an event (the DSEC:
    storm or flood damage) never outranks DETR/DSIL unless the title shows that event."""
    from assistant.eligibility import unshown_condition

    below, shown_conditional = [], 0
    for row in _titles_sharing_the_dsec_themes(assistant):
        result = _ask(assistant, row["titre"], "commune", row["departement"])
        ids = [h.offer.id for h in result.candidates]  # the ranked candidates, best first
        first_grant = min((i for i, o in enumerate(ids) if o in GRANTS), default=None)
        for i, hit in enumerate(result.candidates):
            if first_grant is None or hit.offer.id in GRANTS or "named" in hit.adjustments \
                    or unshown_condition(hit.offer, result.profile) is None:
                continue
            shown_conditional += 1
            assert "condition_unshown" in hit.adjustments, (row["titre"], hit.offer.id)
            if i < first_grant:
                below.append((row["titre"], hit.offer.id))
    assert shown_conditional, "no storm-damage offer among the candidates: the sample no longer tests the rule"
    assert not below


def test_the_bridge_wall_is_not_storm_damage_but_a_storm_is(assistant):
    wall = [r.offer.id for r in _ask(assistant, "Réparation du mur du pont communal, 400 habitants, Cantal").referrals]
    assert GRANTS & set(wall), wall
    assert "etat-dsec" not in wall or wall.index("etat-dsec") > min(wall.index(g) for g in GRANTS & set(wall)), wall
    storm = _ask(assistant, "Après les intempéries, le mur de soutènement de la voirie communale s'est effondré")
    dsec = [r for r in storm.referrals if r.offer.id == "etat-dsec"]
    assert dsec and "condition_unshown" not in dsec[0].hit.adjustments


@pytest.mark.parametrize("title, word_only", [
    ("Programme voirie 2018 (chemins communaux)", {"anah-zero-logement-vacant", "anru-npnru", "ademe-facili-tacct"}),
    ("Aménager l'intérieur et l'extérieur du cimetière pour l'accessibilité PMR", {"bdt-pret-gaia", "ademe-friches-polluees"}),
])
def test_an_ordinary_title_never_gets_an_offer_that_only_shares_a_word(assistant, title, word_only):
    result = _ask(assistant, title)
    offers = {r.offer.id for r in result.referrals}
    assert offers & GRANTS
    assert not offers & word_only
    assert not any("weak_evidence" in r.hit.adjustments for r in result.referrals)


def test_engineering_and_private_questions_are_not_investment_projects():
    model = EverydayModel.load()
    for text in [
        "Qui peut nous accompagner pour élaborer notre projet de territoire ?",
        "Comment calculer les droits à la retraite d'un salarié du privé ?",
    ]:
        assert not model.is_investment(text), text
    assert model.is_investment("Remplacement de la porte de la mairie")


def test_portes_questions_name_the_right_body_and_mark_no_unrelated_offer_eligible(assistant):
    from ingest.corpus import load_corpus

    signposts = load_corpus(assistant.settings.corpus_dir).signposts
    right, wrongly_eligible = [], []
    for row in PORTES:
        result = _ask(assistant, row["question"], row["type"], row["departement"])
        answer = result.answer.text if result.answer else ""
        right.append(row["porte"] in {s.id for s, _ in result.doors} or names_body(answer, signposts[row["porte"]]))
        admitted = set(row["offres_admises"].split()) | set(signposts[row["porte"]].complements)
        wrongly_eligible += [(row["id"], r.offer.id) for r in result.referrals
                             if r.offer.id not in admitted and r.verdict.status == "eligible"]
    assert sum(right) / len(right) >= 0.89  # the gate's bound (assistant.portes.right_body), same measure
    # Target 0, measured 0: an offer is « éligible » only when it is about the question (door stage).
    # Same measure and bound as the gate (assistant.portes.unrelated_eligible: questions, not offers).
    questions = {question for question, _ in wrongly_eligible}
    assert len(questions) / len(PORTES) <= 0.04, wrongly_eligible


def test_nothing_fits_names_the_door_over_http(http):
    """No offer of the partners replaces a secretary: no referral, the centre de gestion is named
    (by the door stage, or by the scope decision that answers staff questions with it)."""
    body = http.post("/v1/chat", json={
        "message": "Notre secrétaire de mairie part en congé maternité, comment la faire remplacer ?",
        "profile": {"collectivity_type": "commune", "departement_code": "15"},
    }).json()
    assert body["referrals"] == []
    assert "centre de gestion" in body["answer"].lower()


def test_listed_church_puts_the_drac_first_and_the_grants_beside_over_http(http):
    body = http.post("/v1/chat", json={
        "message": "L'église classée monument historique a besoin d'une nouvelle toiture, qui finance ?",
        "profile": {"collectivity_type": "commune", "departement_code": "15"},
    }).json()
    assert body["doors"][0]["signpost_id"] == "porte-drac"
    assert body["answer"].index("Direction régionale des affaires culturelles") < body["answer"].index("Par où commencer")
    assert GRANTS & {r["offer_id"] for r in body["referrals"]}


def test_a_named_works_grant_the_commune_is_too_large_for_leaves_the_general_grants(assistant):
    """Generated from the corpus: each active grant for works with a population ceiling for communes,
    asked about by a commune just above it, is cited as not open, and DETR or DSIL is shown."""
    cases = [(o, rule.max) for o in assistant.offers.values() if o.status == "active" and o.id not in GRANTS
             and "grant" in o.support_types and "op" in o.project_steps
             for rule in o.eligibility.population if rule.audience == "commune" and rule.max]
    wrong = []
    for offer, ceiling in cases:
        result = _ask(assistant, f"Commune de {ceiling + 1} habitants : {offer.title}, on y a droit ?")
        if offer.id not in {r.offer.id for r in result.ineligible} or not GRANTS & {r.offer.id for r in result.referrals}:
            wrong.append(offer.id)
        elif not result.answer.text.startswith(f"**Réponse à votre question** : « {offer.title} » ne vous est pas ouvert"):
            wrong.append((offer.id, result.answer.text[:120]))
    assert cases and not wrong, wrong


def test_a_named_bridge_grant_the_bridge_does_not_qualify_for_leaves_the_grants(assistant):
    """Issue 11's case: the works programme excludes openings under 2 m; DETR/DSIL remain."""
    result = _ask(assistant, "Commune de 250 habitants dans l'Aisne, notre petit pont fait 1,80 m d'ouverture, "
                  "le Programme national Ponts travaux peut-il le financer ?", departement="02")
    assert "cerema-ponts-travaux" in {r.offer.id for r in result.ineligible}
    first = result.answer.text.split("\n\n")[0]  # the asked question is answered first, with the rule that fails
    assert first.startswith("**Réponse à votre question** : « Programme national Ponts – Travaux » ne vous est pas ouvert")
    assert "2 m" in first and "1,8 m" in first
    assert GRANTS & {r.offer.id for r in result.referrals}
    assert "cerema-programme-national-ponts" not in {r.offer.id for r in result.referrals}  # closed, not named


def test_a_leading_door_shows_its_complements_and_no_weakly_evidenced_offer(assistant):
    """Generated from portes.csv: whenever a door leads an answer that has offers (« Pour l'essentiel
    de votre demande, l'interlocuteur compétent est … »), the door's complements are among the offers
    with the door's mark in their breakdown, and no offer under the evidence floor is shown."""
    led = 0
    for row in PORTES:
        result = _ask(assistant, row["question"], row["type"], row["departement"])
        if not result.doors or not result.context or "Pour l'essentiel de votre demande" not in (result.context.preface or ""):
            continue
        led += 1
        complements = set(result.doors[0][0].complements) & {o for o, c in assistant.offers.items() if c.status == "active"}
        shown = {r.offer.id: r for r in result.referrals} | {r.offer.id: r for r in result.ineligible}
        assert complements <= set(shown), (row["id"], complements - set(shown))
        for offer_id in complements:
            assert "door_complement" in shown[offer_id].hit.adjustments, (row["id"], offer_id)
        assert not [r.offer.id for r in result.referrals if "weak_evidence" in r.hit.adjustments], row["id"]
    assert led >= 5  # the calibrated lead gap makes the door lead on several of these questions



def test_a_question_in_the_cards_spelling_is_encoded_once_with_the_same_doors(assistant, monkeypatch):
    """The door models read the query as typed and retrieval reads it in the cards' spelling: when the
    two are the same text, the turn encodes it once, and the doors and offers are those of two encodings."""
    lexicon = assistant.handle.current().lexicon
    question = next(q for q in ("Vols et dégradations répétés au gymnase : aide de l'État pour la vidéosurveillance ?",
                                "Nos lampadaires sont vieux (lampes au sodium), on veut passer en LED et couper une partie de la nuit")
                    if lexicon.canonical(q) == q)
    import assistant.service as service

    calls = []  # every encoding goes through encode_query (embed_query gives its list)
    encode = type(assistant.embeddings).encode_query
    monkeypatch.setattr(type(assistant.embeddings), "encode_query", lambda self, text: calls.append(text) or encode(self, text))
    once = assistant.chat(question)
    assert calls == [question]
    door = service.open_door  # the door encoding the question itself, as before
    monkeypatch.setattr(service, "open_door", lambda *args: door(*args[:-1], None))
    twice = assistant.chat(question)
    assert calls == [question, question, question]
    assert [s.id for s, _ in once.doors] == [s.id for s, _ in twice.doors]
    assert [r.offer.id for r in once.referrals] == [r.offer.id for r in twice.referrals]



def test_a_door_card_named_by_its_acronym_or_full_name_gets_the_bonus_and_only_as_a_whole_word():
    """Generated from corpus/signposts/: a message naming a card by an acronym (« DRAC ») or a name of
    three words or more gets that card the calibrated bonus, whatever its case and accents; the same
    letters inside a longer word do not (« ANS » is not in « dans »)."""
    import re

    from assistant.everyday import ACRONYM, SignpostFinder
    from assistant.text import fold
    from ingest.corpus import load_corpus, load_signposts, load_themes
    from tests.conftest import CORPUS

    themes = load_themes(CORPUS)
    cards = list(load_signposts(CORPUS, themes, set(load_corpus(CORPUS).offers)).values())
    finder = SignpostFinder(cards, themes, set(), embeddings=None)
    flat = [0.0] * len(finder.signposts)

    def bonus_of(message: str) -> dict[str, float]:
        return {s.id: score for score, s in finder.scores(message, [], 1.0, flat)}

    named = 0
    for card in finder.signposts:
        for alias in (a for a in card.aliases if ACRONYM.match(a) or len(a.split()) >= 3):
            assert bonus_of(f"Faut-il contacter {alias.upper()} pour notre projet ?")[card.id] == 1.0, (card.id, alias)
            assert bonus_of(f"Faut-il contacter {alias.lower()}, pour notre projet ?")[card.id] == 1.0, (card.id, alias)
            glued = f"Faut-il contacter x{fold(alias)}x pour notre projet ?"
            others = [a for a in card.aliases if a != alias and (ACRONYM.match(a) or len(a.split()) >= 3)
                      and re.search(rf"\b{re.escape(fold(a))}\b", fold(glued))]
            assert bonus_of(glued)[card.id] == (1.0 if others else 0.0), (card.id, alias)
            named += 1
    assert named >= len(finder.signposts)  # every card has a name the rule reads
    assert all(v == 0.0 for v in bonus_of("Quelle aide pour rénover l'école ?").values())
