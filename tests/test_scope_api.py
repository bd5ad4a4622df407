"""Each door of the scope decision through the real API (POST /v1/chat on a live server), and the
issue's in-scope questions answered."""

import pytest

DOORS = [
    ("J'ai une rage de dents et le cabinet dentaire du bourg est fermé, je peux prendre quoi ?", "service-public.fr"),
    ("Comment renouveler mon passeport qui expire le mois prochain ?", "service-public.fr"),
    ("Notre secrétaire de mairie demande un temps partiel, pouvons-nous le refuser ?", "centre de gestion"),
    ("Comment organiser le bureau de vote pour les prochaines élections municipales ?", "préfecture"),
    ("La commune peut-elle transmettre le fichier des électeurs à une association, quelles règles de protection des données ?", "CNIL"),
]
ANSWERED = [
    "Nous voulons lancer une étude de cantine partagée avec la commune voisine, qui peut nous accompagner ?",
    "Après les élections municipales, le CRTE signé par l'ancienne équipe continue-t-il ?",
    "Piste cyclable de 4 km jusqu'au village voisin, il manque 500 k€, un prêt long est possible ?",
]


@pytest.mark.parametrize("message,door", DOORS)
def test_out_of_scope_questions_are_refused_with_their_door_and_no_offer(http, message, door):
    body = http.post("/v1/chat", json={"message": message}).json()
    assert body["kind"] == "refusal" and body["referrals"] == []
    assert door in body["answer"]
    assert "Aiguillage oriente les collectivités" in body["answer"]


@pytest.mark.parametrize("message", ANSWERED)
def test_in_scope_questions_sharing_out_of_scope_words_are_answered(http, message):
    body = http.post("/v1/chat", json={"message": message}).json()
    assert body["referrals"] or body.get("clarification"), body["answer"][:200]
