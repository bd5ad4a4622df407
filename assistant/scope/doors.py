"""The door named when a question is outside Aiguillage's field, by kind of question.

Bodies and sites are those of the reference (/work/shared/reference/offers-facts.md §11.3: the
centre de gestion for staff questions; the signpost card porte-service-public for private persons'
affairs) and of the data the classifier learns from (the CNIL FAQ for data protection, the
préfecture FAQ for councils, elections and the mayor's police powers). No phone number nor local
address: the asker's own département holds them.
"""

from __future__ import annotations

SERVICE_PUBLIC = (
    "service-public.fr (https://www.service-public.fr), le site officiel de l'administration pour les "
    "démarches personnelles, ou la France services la plus proche"
)

# door id -> the body named in the refusal (French, read by the user)
DOORS: dict[str, str] = {
    "cdg": (
        "le centre de gestion de la fonction publique territoriale (CDG) de votre département, qui conseille "
        "les employeurs territoriaux sur le statut, la carrière, la rémunération et le recrutement des agents"
    ),
    "prefecture": (
        "la préfecture de votre département, pour le fonctionnement du conseil municipal, les élections, "
        "les pouvoirs de police du maire et le contrôle de légalité des actes"
    ),
    "cnil": "la CNIL (https://www.cnil.fr), compétente pour la protection des données personnelles",
    "service-public": (
        "service-public.fr (https://www.service-public.fr), qui décrit les règles et démarches (état civil, "
        "urbanisme, cimetières, marchés publics), et le site des collectivités locales de l'État "
        "(https://www.collectivites-locales.gouv.fr)"
    ),
    "particulier": SERVICE_PUBLIC,
}
LOCAL_GOVERNMENT_DOORS = ("cdg", "prefecture", "cnil", "service-public")
# Doors whose body has a signpost card (corpus/signposts/): the refusal adds its local office.
SIGNPOST_OF_DOOR = {"cdg": "porte-cdg"}

PARTICULIER = "particulier"  # the door of a private person's own affair

_PREFECTURE_RUBRIQUES = ("elections", "pouvoirs de police", "fonctionnement des assemblees", "agir en justice contre l'administration")


def door_of_row(genre: str, rubrique: str) -> str:
    """Door of a local-government row of hors-champ-collectivites.csv, from its `genre` and `rubrique`
    (accent-folded match): CNIL FAQ → cnil; public-sector staff → cdg; elections, police powers,
    councils, disputes with the administration → prefecture; anything else → service-public."""
    from assistant.scope.features import folded

    genre, rubrique = folded(genre), folded(rubrique)
    if genre.startswith("cnil"):
        return "cnil"
    if "public-sector staff" in genre or "fonction publi" in rubrique:
        return "cdg"
    if any(r in rubrique for r in _PREFECTURE_RUBRIQUES):
        return "prefecture"
    return "service-public"
