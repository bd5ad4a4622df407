"""Who is asking: the profile built turn after turn from the conversation (or given by the widget).

Facts come from explicit patterns on the message and from the territory tables (population,
département, région, EPCI). A fact said once is kept for the rest of the conversation; a later
message can correct it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from assistant.facts import extract_project_facts
from assistant.json_types import JsonFloat, JsonInt
from assistant.patterns import Screened, screened
from assistant.schema import ThemeVocabulary
from assistant.text import FOLDED_STOPWORDS, fold, literal, match_terms, stem, words

CollectivityType = Literal["commune", "epci", "department", "region", "other"]
Stage = Literal["idee", "etudes", "travaux"]
Need = Literal["ingenierie", "financement", "les-deux", "outil"]


class Profile(BaseModel):
    # A profile comes in API bodies: numbers and booleans of JSON types only (tests/test_console_api.py).
    collectivity_type: CollectivityType | None = None
    name: str | None = None
    insee: str | None = None
    epci_siren: str | None = None
    epci_name: str | None = None
    population: JsonInt | None = None
    population_source: Literal["texte", "insee"] | None = None
    departement_code: str | None = None
    departement_name: str | None = None
    region_code: str | None = None
    region_name: str | None = None
    themes: list[str] = Field(default_factory=list)
    place_themes: list[str] = Field(default_factory=list, description="Themes said only as the place of the works "
                                    "(« l'école » in « la voirie devant l'école »), not as its object.")
    stage: Stage | None = None
    need: Need | None = None
    facts: list[str] = Field(default_factory=list, description="qpv, rural, coastal, mountain, overseas, frr, ort")
    programmes: list[str] = Field(default_factory=list)
    works_amount_eur: JsonInt | None = Field(None, description="Amount of the works, € (HT when works_amount_ht).")
    works_amount_ht: StrictBool | None = Field(None, description="True when the amount was said « HT » (set with the amount).")
    funding_gap_eur: JsonInt | None = Field(None, description="What is still to be financed, €.")
    opening_m: JsonFloat | None = Field(None, description="Opening of the structure (bridge), metres.")
    structure_kind: Literal["bridge", "wall"] | None = None
    ambiguous_places: list[str] = Field(default_factory=list, description="Candidates to choose from.")
    ambiguous_codes: list[str] = Field(default_factory=list, description="INSEE codes of ambiguous_places, same order.")

    def merged_with(self, newer: Profile) -> Profile:
        """Newer non-empty facts win; lists accumulate (themes follow the latest message when it has some)."""
        data = self.model_dump()
        for key, value in newer.model_dump().items():
            if key in {"facts", "programmes"}:
                data[key] = sorted(set(data[key]) | set(value))
            elif key == "themes":
                data[key] = value or data[key]
            elif key == "place_themes":  # read with the themes: the message that sets them sets its places
                data[key] = value if (value or newer.themes) else data[key]
            elif key in {"ambiguous_places", "ambiguous_codes"}:
                data[key] = value
            elif value is not None:
                data[key] = value
        return Profile.model_validate(data)


NUMBER = r"(\d{1,3}(?:[ \u00a0\u202f.]\d{3})+|\d+(?:[,.]\d+)?)\s*(k|000|mille)?"
POPULATION = screened(NUMBER + r"\s*(habitants|habs?\b|hab\.|h\b|ames|administres)")
_EPCI_WORDS = r"(communaute de communes|communaute d'agglomeration|communaute urbaine|metropole|intercommunalite|interco|epci|agglo(meration)?|com ?com|cc|ca|cu|petr|pays)"
_TYPE_WORDS: list[tuple[CollectivityType, str]] = [
    ("epci", _EPCI_WORDS),
    ("department", r"(conseil departemental|departement)"),
    ("region", r"(conseil regional|region)"),
    ("other", r"(syndicat|sem|spl|bailleur social|office public|ccas|association)"),
    ("commune", r"(commune|mairie|village|ville|bourg|municipalite)"),
]
# The asker's own collectivity: named after an identity cue ("notre commune", "je suis maire",
# "on est une CC"), at the start of the message, or with its size ("ville de 45 000 habitants").
# "les communes rurales du département" says nothing of who is asking.
_IDENTITY = r"(notre|nos|ma|mon|on est une?|nous sommes une?|je suis (a|au|a la|dans) (la|le|une?)?|je represente (la|le|une?)|pour (notre|la|le)|en tant que)"
TYPE_PATTERNS: list[tuple[CollectivityType, Screened]] = [
    (kind, screened(rf"(^\W*(le |la |l')?|\b{_IDENTITY}\s+){words}\b|\b{words}\s+(de|d')\s*\d")) for kind, words in _TYPE_WORDS
]
# Who is asking, said without an identity phrase: « élu départemental », « petite commune »,
# « un village de 200 habitants », « je travaille pour un syndicat ». Read only when no type was found.
ASKER_CUES: list[tuple[CollectivityType, Screened]] = [
    ("department", screened(
        r"\b(elue?s? (au |du )?(conseil )?departement(al|ale|aux|ales)?|conseill(er|ere)s? departementa(l|le|ux|les)"
        r"|(au|du|le) conseil departemental|presidente? du (conseil )?departement(al)?)\b"
    )),
    ("commune", screened(
        r"\b(petite?s? (commune|village|ville|bourg)s?|(un|une|notre|mon|ma|dans (un|une|notre)|pour (un|une|notre)) (village|bourg))\b"
    )),
    ("other", screened(r"\b(un|une|notre|le|au|du|pour (un|le|notre)) (syndicat|sivom|sivu|smictom)\b")),
]
MAYOR = screened(r"\b(je suis (le |la )?maire|maire (de|d')|adjointe? au maire|secretaire de mairie|conseil municipal|(le |la )?maire)\b")
PRESIDENT_OF_EPCI = screened(rf"\bpresidente? (de la |du |de l')?{_EPCI_WORDS}\b")
FACTS = {
    "qpv": screened(r"\bqpv\b|quartiers? prioritaires?|politique de la ville"),
    "rural": screened(r"\brural|\bvillage\b|campagne"),
    "coastal": screened(r"littoral|\bcotiere?s?\b|bord de mer|trait de cote"),
    "mountain": screened(r"montagne|\bstation de ski|massif"),
    # La Réunion only through the territory tables (apply_territory): « salle de réunion » is no island.
    "overseas": screened(r"outre-mer|\bdrom\b|guadeloupe|martinique|guyane|mayotte"),
    "frr": screened(r"\bfrr\b|france ruralites"),
    "ort": screened(r"\bort\b|operation de revitalisation"),
}
PROGRAMMES = {
    "petites-villes-de-demain": screened(r"petites? villes? de demain|\bpvd\b"),
    "action-coeur-de-ville": screened(r"action coeur de ville|\bacv\b"),
    "villages-d-avenir": screened(r"villages? d'avenir"),
    "territoires-d-industrie": screened(r"territoires? d'industrie"),
    "npnru": screened(r"\bnpnru\b"),
    "crte": screened(r"\bcrte\b"),
    "adhesion-cerema": screened(r"adherents? (au|du) cerema"),
}
# Naming a programme is not being in it: membership needs a cue just before the name.
MEMBERSHIP = screened(
    r"(on est|nous sommes|sommes|on a ete retenue?s?|avons ete retenue?s?|retenue?s? (au|dans|en|pour)|laureate?s?|labellisee?s?"
    r"|membres?|beneficiaires?|signataires?|fait partie|faisons partie|deja dans|deja en|deja|commune|ville|notre|en tant que)\W+(\w+\W+){0,4}$"
)
STAGES: list[tuple[Stage, Screened]] = [
    ("travaux", screened(r"\btravaux\b|chantier|\brealiser\b|construire|installer")),
    ("etudes", screened(r"\betudes?\b|diagnostic|faisabilite|audit|programmation")),
    ("idee", screened(r"\bidee\b|reflexion|on reflechit|envisage|demarrer|par ou commencer")),
]
NEEDS: list[tuple[Need, Screened]] = [
    ("financement", screened(r"financ|subvention|\bpret\b|emprunt|argent|budget|payer|\baides? financieres?|cofinanc|quelles? aides?|\bdotation")),
    ("ingenierie", screened(r"ingenierie|accompagn|conseil|\bappui\b|expertise|aide technique|monter le projet|chef de projet")),
]


TOOL_NEED = screened(r"\boutils?\b|plateforme|en ligne|alertes?\b|portail|\bsite\b|logiciel|application|\bdonnees\b|cartograph|simulateur|calculateur|tableau de bord")


def _parse_population(text: str) -> int | None:
    """'800 habitants' -> 800; 'moins de 3 500 habitants' -> 3499; '12k habitants' -> 12000."""
    match = POPULATION.search(text)
    if not match:
        return None
    digits, multiplier = match.group(1), match.group(2)
    if re.search(r"[ \u00a0\u202f.]\d{3}$", digits):
        digits = re.sub(r"[ \u00a0\u202f.]", "", digits)
    value = float(digits.replace(",", "."))
    if multiplier in {"k", "mille", "000"}:
        value *= 1000
    before = text[max(0, match.start() - 12) : match.start()]
    if re.search(r"moins de\s*$", before):
        value -= 1
    elif re.search(r"(plus de|au-dela de)\s*$", before):
        value += 1
    return int(value)


# What a theme phrase names besides its theme (corpus/themes.yaml `territory_nouns`, `building_nouns`,
# `building_fittings`, `new_dwellings`).
Noun = Literal["territory", "building", "fitting", "dwelling"] | None
# The place in the vocabulary of a phrase that names no theme (corpus/themes.yaml `themeless_phrases`).
THEMELESS = -1
_PHRASE_INDEXES: dict[int, tuple[ThemeVocabulary, dict[str, list[tuple[tuple[str, ...], int, Noun]]], frozenset[str]]] = {}


def _phrase_index(vocabulary: ThemeVocabulary) -> dict[str, list[tuple[tuple[str, ...], int, Noun]]]:
    """first term -> [(terms, place of the theme in the vocabulary, territory/building noun or None)] of every
    theme label and synonym (match_terms): built once per vocabulary (some 450 phrases), so that a turn looks
    up only the phrases its own words can start. Kept with the vocabulary itself, so an id is never reused."""
    entry = _PHRASE_INDEXES.get(id(vocabulary))
    if entry is None or entry[0] is not vocabulary:
        nouns: dict[tuple[str, ...], Noun] = {}
        for kind, phrases in (("building", vocabulary.building_nouns), ("territory", vocabulary.territory_nouns),
                              ("fitting", vocabulary.building_fittings), ("dwelling", vocabulary.new_dwellings)):
            nouns |= {tuple(match_terms(n)): kind for n in phrases}
        index: dict[str, list[tuple[tuple[str, ...], int, Noun]]] = {}
        for place, theme in enumerate(vocabulary.themes):
            for phrase in [theme.label, *theme.synonyms]:
                terms = tuple(match_terms(phrase))
                if terms:
                    index.setdefault(terms[0], []).append((terms, place, nouns.get(terms)))
        for phrase in vocabulary.themeless_phrases:  # place -1: reads its words, gives no theme
            terms = tuple(match_terms(phrase))
            if terms:
                index.setdefault(terms[0], []).append((terms, THEMELESS, nouns.get(terms)))
        if len(_PHRASE_INDEXES) >= 8:  # a process holds one vocabulary (tests a few)
            _PHRASE_INDEXES.clear()
        new_building = frozenset(t for n in vocabulary.new_building_nouns for t in match_terms(n))
        entry = _PHRASE_INDEXES[id(vocabulary)] = (vocabulary, index, new_building)
    return entry[1]


def _new_building_terms(vocabulary: ThemeVocabulary) -> frozenset[str]:
    """The match_terms of the table's `new_building_nouns`, kept with the phrase index."""
    _phrase_index(vocabulary)
    return _PHRASE_INDEXES[id(vocabulary)][2]


# The place of the works, not their object (README « Les thèmes d'une question : l'objet, pas le lieu »):
# a theme phrase inside a locative complement — « la voirie devant l'école », « des panneaux sur le toit de
# la salle des fêtes », « le parking de la salle des fêtes », « les luminaires du stade » — names where the
# works happen. Its left context, read on the folded words: the articles, possessives and prepositions
# just before the phrase (LINKS), then the word that governs it (its head), which is
# (stop words too: « par où commencer » starts at « commencer »)
# - a locative word (LOCATIVE_WORDS: « devant », « près de », « aux abords de », « le long de »…) after
#   an object of its own (some other word before it: « devant l'école » alone says nothing of an object);
#   « proximité » only as « à proximité de » (« gestion de proximité des biodéchets » is no place);
# - a place-holding noun (PLACE_HEADS: « parking », « parvis », « cour », « voirie »…) the phrase completes
#   with its article (« du », « des », « de la », « de l' »; a bare « de » names a kind: « parking de
#   covoiturage », « cour d'école »);
# - a roof or terrace after « sur », the same way (ROOF_HEADS: « sur le toit de la salle des fêtes »),
#   whereas « la toiture de l'école » alone is the school's own roof, the building's works.
# Chosen on the Fonds vert 2023 titles (evals/place_themes.py prints the titles touched and what it costs).
LINKS = frozenset({"de", "du", "des", "d", "la", "le", "l", "les", "a", "au", "aux", "un", "une", "son", "sa", "ses",
                   "leur", "leurs", "notre", "nos", "votre", "vos", "cette", "ce", "cet", "ces"})
GENITIVE = frozenset({"de", "d"})
ARTICLED = frozenset({"du", "des"})
DETERMINERS = LINKS - GENITIVE - ARTICLED - {"a", "au", "aux"}
LOCATIVE_WORDS = frozenset({"devant", "derriere", "pres", "proximite", "abord", "abords", "autour", "alentours", "long",
                            "face", "cote", "bordure", "jouxtant", "attenant", "attenante", "attenants", "attenantes"})
PLACE_HEADS = frozenset({"parking", "parkings", "stationnement", "parvis", "cour", "cours", "voirie", "rue", "rues",
                         "trottoir", "trottoirs", "chemin", "acces", "entree", "abords"})
ROOF_HEADS = frozenset({"toit", "toits", "toiture", "toitures", "terrasse", "terrasses"})
# A territory or building noun completing another word (`completes`): after a genitive or a preposition of
# place. « à », « pour », « sur » are left out: « candidater à Villages d'avenir », « des aides pour un
# village », « des panneaux sur l'école » (the roof rule above reads roofs).
COMPLEMENT_LINKS = GENITIVE | ARTICLED | {"dans", "en", "au", "aux"}


def _occurrences(text: str, vocabulary: ThemeVocabulary, themeless: bool = False) -> tuple[list[str], list[tuple[int, int, int, int, Noun]]]:
    """(folded words, [(place of the theme, terms, first word, last word, territory/building noun or None)])
    of every label or synonym found in the text (its match_terms, consecutive and in order), word positions
    in the folded words. The longest phrase reads its words: a phrase inside a longer phrase of another theme
    is not found (« personnes à mobilité réduite » is no mobility, « recyclage foncier » no waste, « sécurité
    incendie » no forest fire, « centre-bourg » no « bourg »), nor one inside a phrase that names no theme
    (`themeless_phrases`: « centre d'incendie et de secours »), which is not returned either unless `themeless`
    (then with the place THEMELESS)."""
    folded = words(fold(text))
    # match_terms, word by word, with each term's position among the folded words
    terms = [(stem(w), i) for i, w in enumerate(folded) if w not in FOLDED_STOPWORDS and len(w) > 1]
    tokens, phrases = tuple(t for t, _ in terms), _phrase_index(vocabulary)
    found = []
    for start, term in enumerate(tokens):
        for phrase, place, noun in phrases.get(term, ()):
            end = start + len(phrase)
            if tokens[start:end] == phrase:
                found.append((place, len(phrase), terms[start][1], terms[end - 1][1], noun))
    if len(found) > 1:
        found = [f for f in found if not any(o[0] != f[0] and o[1] > f[1] and o[2] <= f[2] and f[3] <= o[3] for o in found)]
    return folded, found if themeless else [f for f in found if f[0] != THEMELESS]


def in_place_complement(folded: list[str], first: int) -> bool:
    """Whether the phrase starting at folded word `first` is the complement of place of a head before it
    (rules above)."""
    head = first - 1
    while head >= 0 and (folded[head] in LINKS or folded[head] in FOLDED_STOPWORDS):
        head -= 1
    if head < 0:
        return False
    links, word = folded[head + 1 : first], folded[head]
    if word in LOCATIVE_WORDS:
        if word == "proximite" and (head == 0 or folded[head - 1] != "a"):
            return False  # « gestion de proximité des biodéchets »: nearby, not a place
        return any(w not in LINKS and w not in LOCATIVE_WORDS for w in folded[: head - (word == "proximite")])
    # A genitive with its article (« du », « des », « de la », « de l' »): a bare « de » gives a kind of
    # the head, not its place (« parking de covoiturage », « cour d'école »).
    if not (set(links) & ARTICLED or set(links) & GENITIVE and set(links) & DETERMINERS):
        return False
    if word in PLACE_HEADS:
        return True
    before = head - 1
    while before >= 0 and folded[before] in LINKS:
        before -= 1
    return word in ROOF_HEADS and before >= 0 and folded[before] == "sur"


def completes(folded: list[str], first: int) -> bool:
    """Whether the phrase starting at folded word `first` completes a word before it through a genitive or
    a preposition of place (« la place du village », « le cœur de village », « travaux dans le quartier »,
    « en centre-bourg »), not as the direct object of a verb (« revitaliser le centre-bourg ») nor at the
    start (« notre village »)."""
    head = first - 1
    while head >= 0 and (folded[head] in LINKS or folded[head] in FOLDED_STOPWORDS):
        head -= 1
    return head >= 0 and bool(set(folded[head + 1 : first]) & COMPLEMENT_LINKS)


# A word of a new building governs a building noun at most this many folded words after it: « construction
# d'une nouvelle école », « construire un gymnase »; not « construction d'un préau pour l'école ».
BUILT_REACH = 4


def built(folded: list[str], vocabulary: ThemeVocabulary) -> list[int]:
    """Positions of the folded words that say a new building (corpus/themes.yaml `new_building_nouns`:
    « construction », « création »…)."""
    terms = _new_building_terms(vocabulary)
    return [i for i, w in enumerate(folded) if w not in FOLDED_STOPWORDS and stem(w) in terms] if terms else []


# The means of a building's works said after it: « l'éclairage de la mairie par des LED », « … du gymnase en LED ».
MEANS = frozenset({"par", "en"})


def fitted(folded: list[str], found: list[tuple[int, int, int, int, Noun]]) -> bool:
    """Whether a building noun completes a fitting phrase right before it (corpus/themes.yaml `building_fittings`:
    « les luminaires du gymnase », « des LED dans les écoles »), only articles, prepositions and stop words
    between them, or completes a word (not as the place of another: « la rue de la mairie ») and is followed by a
    fitting said as the means of the works (MEANS: « l'éclairage de la mairie par des LED »): the fittings are the building's (interior lighting), not the
    theme the phrase names (street lighting)."""
    ordered = sorted(found, key=lambda f: f[2])

    def linked(between: list[str], means: frozenset[str] = frozenset()) -> bool:
        return all(w in LINKS or w in COMPLEMENT_LINKS or w in FOLDED_STOPWORDS or w in means for w in between)

    return any(
        before[4] == "fitting" and after[4] == "building" and completes(folded, after[2])
        and linked(folded[before[3] + 1 : after[2]])
        or before[4] == "building" and after[4] == "fitting" and completes(folded, before[2])
        and not in_place_complement(folded, before[2])  # « les luminaires de la rue de la mairie par des LED »: the street's
        and set(folded[before[3] + 1 : after[2]]) & MEANS and linked(folded[before[3] + 1 : after[2]], MEANS)
        for before, after in zip(ordered, ordered[1:]))


def _read_themes(text: str, vocabulary: ThemeVocabulary) -> tuple[dict[int, int], set[int]]:
    """({place of a theme said as an object: terms of its longest phrase}, {places of the themes said
    only as the place of the works}) — places in the vocabulary's order.

    The place of the works: a phrase in a complement of place (in_place_complement); a territory noun that
    completes another word (`completes`: « la voirie du bourg »); a building noun that completes another
    word after a phrase that names no place and gives another theme or none (`themeless_phrases`), the nature
    of the works (« la mise aux normes de la salle des fêtes », « les équipements numériques de l'école »), and one a word of a new building governs (`built`: « la
    construction d'une salle des fêtes » is no energy renovation); « la rénovation de l'école » and « la
    rénovation de l'école et de l'éclairage public » keep the school as their object."""
    folded, found = _occurrences(text, vocabulary, themeless=True)
    # A phrase that names no theme still names the nature of the works (« équipements numériques de l'école »),
    # unless it names a building (« mairie »: only the place its fittings belong to).
    bare = [(THEMELESS, last) for place, _, _, last, noun in found if place == THEMELESS and noun != "building"]
    themeless_buildings = [f for f in found if f[0] == THEMELESS and f[4] == "building"]
    found = [f for f in found if f[0] != THEMELESS]
    fittings_of = None  # a themeless building's own fittings name the table's fittings_theme (its renovation)
    if any(noun == "fitting" for *_, noun in found) and fitted(folded, found + themeless_buildings):
        if themeless_buildings and not fitted(folded, found) and vocabulary.fittings_theme:
            fittings_of = next((i for i, t in enumerate(vocabulary.themes) if t.id == vocabulary.fittings_theme), None)
        found = [f for f in found if f[4] != "fitting"]  # the building's own fittings: no theme of their own
    # A complement of place runs to the end of its phrase: a phrase inside it is part of the place
    # (« devant la défense extérieure contre l'incendie »: « incendie » too).
    spans = [(first, last) for _, _, first, last, noun in found
             if in_place_complement(folded, first) or noun == "territory" and completes(folded, first)]
    natures = [(place, last) for place, _, first, last, noun in found
               if noun in (None, "fitting") and not any(a <= first and last <= b for a, b in spans)] + bare
    new = built(folded, vocabulary) if any(noun in ("building", "dwelling") for *_, noun in found) else []
    spans += [(first, last) for place, _, first, last, noun in found if noun == "building" and (
        completes(folded, first) and any(nature != place and end < first for nature, end in natures)
        or any(0 < first - i <= BUILT_REACH for i in new))
        or noun == "dwelling" and any(0 < first - i <= BUILT_REACH for i in new)]
    objects: dict[int, int] = {} if fittings_of is None else {fittings_of: 1}
    for place, length, first, last, _ in found:
        if length > objects.get(place, 0) and not any(a <= first and last <= b for a, b in spans):
            objects[place] = length
    return objects, {place for place, _, _, _, _ in found} - set(objects)


def read_themes(text: str, vocabulary: ThemeVocabulary, limit: int = 3) -> tuple[list[str], list[str]]:
    """(detect_themes, detect_place_themes) of the text, its phrases read once (extract_profile needs both)."""
    objects, places = _read_themes(text, vocabulary)
    ranked = sorted(objects.items(), key=lambda item: (-item[1], item[0]))
    return ([vocabulary.themes[place].id for place, _ in ranked[:limit]],
            [vocabulary.themes[place].id for place in sorted(places)])


def detect_themes(text: str, vocabulary: ThemeVocabulary, limit: int = 3) -> list[str]:
    """Themes whose label or a synonym appears in the text (its match_terms, consecutive and in
    order), most specific match (most terms) first, then in the vocabulary's order; a theme said only
    as the place of the works (in_place_complement: « la voirie devant l'école ») is not one of them."""
    return read_themes(text, vocabulary, limit)[0]


def detect_place_themes(text: str, vocabulary: ThemeVocabulary) -> list[str]:
    """Themes said only as the place of the works (« l'école » in « la voirie devant l'école »), in the
    vocabulary's order: not the question's themes (detect_themes), kept so that an offer matched only
    by them ranks after the others (rank.PLACE_ONLY)."""
    return read_themes(text, vocabulary)[1]


def extract_profile(text: str, vocabulary: ThemeVocabulary, territories=None) -> Profile:
    folded = fold(text).replace("’", "'")
    profile = Profile()
    # The asker's own collectivity is the first one the message names ("Ville de…, préfecture du département").
    found = [(m.start(), kind) for kind, pattern in TYPE_PATTERNS if (m := pattern.search(folded))]
    if PRESIDENT_OF_EPCI.search(folded):
        profile.collectivity_type = "epci"
    elif found:
        profile.collectivity_type = min(found)[1]
    elif MAYOR.search(folded):
        profile.collectivity_type = "commune"
    else:
        profile.collectivity_type = next((kind for kind, cue in ASKER_CUES if cue.search(folded)), None)
    population = _parse_population(folded)
    if population is not None:
        profile.population, profile.population_source = population, "texte"
    profile.facts = sorted(name for name, pattern in FACTS.items() if pattern.search(folded))
    profile.programmes = sorted(
        name for name, pattern in PROGRAMMES.items() if (m := pattern.search(folded)) and MEMBERSHIP.search(folded[: m.start()][-60:])
    )
    profile.stage = next((stage for stage, pattern in STAGES if pattern.search(folded)), None)
    needs = [need for need, pattern in NEEDS if pattern.search(folded)]
    if TOOL_NEED.search(folded):
        profile.need = "outil"
    else:
        profile.need = "les-deux" if len(needs) == 2 else (needs[0] if needs else None)
    profile.themes, profile.place_themes = read_themes(text, vocabulary)
    extract_project_facts(folded, profile)
    if territories is not None:
        apply_territory(profile, territories.resolve(text))
    return profile


def unknown_code_notice(code: str) -> str:
    """The French notice for an INSEE code (API field `insee`, the widget's data-insee) that names no
    commune of the territory tables: the code quoted as given (inert, assistant.text.literal), what the
    answer does without it, and how to give the territory instead."""
    return (f"Le code INSEE « {literal(code)} » ne correspond à aucune commune connue : cette réponse ne tient pas "
            "compte de votre territoire. Pour des interlocuteurs proches de chez vous, indiquez le nom de votre "
            "commune dans votre question.")


def apply_territory(profile: Profile, resolution) -> None:
    """Copy what the territory tables know; a population typed by the asker is kept over INSEE's."""
    if resolution is None or not resolution.found:
        return
    if resolution.ambiguous:
        profile.ambiguous_places = list(resolution.candidate_labels[:6])
        profile.ambiguous_codes = [c.code for c in resolution.candidates[:6]]
    commune, epci = resolution.commune, resolution.epci
    speaks_for_epci = profile.collectivity_type == "epci" or (commune is None and epci is not None)
    if commune is not None and not speaks_for_epci:
        profile.collectivity_type, profile.name, profile.insee = "commune", commune.name, commune.code
        _set_population(profile, commune.population)
    if epci is not None:
        profile.epci_siren, profile.epci_name = epci.siren, epci.name
        if speaks_for_epci:
            profile.collectivity_type, profile.name = "epci", epci.name
            _set_population(profile, epci.population)
    if resolution.departement is not None:
        profile.departement_code, profile.departement_name = resolution.departement.code, resolution.departement.name
        if len(resolution.departement.code) == 3 and "overseas" not in profile.facts:  # 971…976
            profile.facts = sorted([*profile.facts, "overseas"])
    if resolution.region is not None:
        profile.region_code, profile.region_name = resolution.region.code, resolution.region.name


def _set_population(profile: Profile, population: int | None) -> None:
    if population is not None and profile.population_source != "texte":
        profile.population, profile.population_source = population, "insee"
