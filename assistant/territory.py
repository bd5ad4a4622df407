"""Who is asking: communes, EPCI, départements and régions, and the resolver of free French text.

Data comes from corpus/territoires/ (built by ingest.territories from INSEE data). The resolver
favours precision: a wrong commune silently changes eligibility, a missing one only costs a
question. So a name is taken only when the phrasing signals a place ("maire de", "à", a capital
letter after a cue, a distinctive multi-word name, a capitalised name alone in a part of a title as in
"Rénovation de l'éclairage - Izernore"), and homonyms are returned as candidates.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.patterns import screened
from assistant.schema import Audience
from assistant.text import WORD_MEMO

# --- normalisation ---------------------------------------------------------------------------

_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_WORD = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    """Lowercase ASCII: accents dropped, ligatures spelled out, other letters lost."""
    text = text.lower().replace("œ", "oe").replace("æ", "ae")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def normalize(text: str) -> str:
    """Lowercase, no accents, hyphens and apostrophes as spaces, St/Ste spelled out."""
    return " ".join(_ABBREVIATIONS.get(t, t) for t in _WORD.findall(_fold(text)))


ARTICLES = frozenset({"le", "la", "les", "l"})
JOINERS = ARTICLES | {"de", "du", "des", "d", "en", "sur", "sous", "et", "aux", "au", "a", "lez", "lo", "los"}
SAINTS = frozenset({"saint", "sainte", "saints", "saintes"})

# Grammar words, numbers and the country (« France services », « France Rénov' ») : never a place
# on their own, nor the content of a name ("Le Y").
GRAMMAR_WORDS = frozenset(
    """
    y eu a en le la les un une des du de au aux et ou sur sous dans par pour avec sans chez entre vers
    pres apres avant contre selon depuis ce cet cette ces mon ma mes son sa ses notre nos votre vos leur
    leurs qui que dont on nous vous ils elles est sont suis ai as avons avez ont fait plus moins tres bien
    tout tous toute toutes autre autres meme aussi donc mais car ni ne pas si comme quand oui non
    deux trois quatre cinq six sept huit neuf dix onze douze vingt trente quarante cinquante cent mille
    saint sainte france
    """.split()
)
# Commune names that are also ordinary French words ("Sens", "Orange", "La Flèche"), generated from
# the territory tables and a French dictionary (ingest.common_words, `aiguillage territories
# common-words`): such a name is taken only with a place cue (see Territories._judge_name).
COMMON_NAMES_FILE = "noms-communs.txt"


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    code: str
    name: str


@dataclass(frozen=True)
class Departement:
    code: str
    name: str
    region: str


@dataclass(frozen=True)
class Commune:
    code: str  # INSEE
    name: str
    postal_codes: tuple[str, ...]
    departement: str
    region: str
    population: int | None  # population municipale
    epci: str | None  # SIREN of its EPCI à fiscalité propre; None for a few islands and overseas


@dataclass(frozen=True)
class Epci:
    siren: str
    name: str
    kind: str  # CC, CA, CU, METRO, MET69
    population: int | None  # population municipale
    population_totale: int | None
    members: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """What the text designates. `level` is the finest collectivity named, not necessarily the asker."""

    commune: Commune | None = None
    epci: Epci | None = None
    departement: Departement | None = None
    region: Region | None = None
    candidates: list[Commune] = field(default_factory=list)
    epci_candidates: list[Epci] = field(default_factory=list)  # when the words fit several EPCI
    candidate_labels: list[str] = field(default_factory=list)  # "Saint-Martin (Gers, 434 habitants)"
    ambiguous: bool = False
    matched_text: str | None = None
    level: Audience | None = None
    former_name: str | None = None  # set when matched through a commune déléguée or associée

    @property
    def found(self) -> bool:
        return any((self.commune, self.epci, self.departement, self.region, self.candidates))

    def clarifying_question(self, limit: int = 8) -> str | None:
        """The question to ask when several communes fit, in French."""
        if not self.ambiguous:
            return None
        shown = self.candidate_labels[:limit]
        more = len(self.candidate_labels) - len(shown)
        listing = " ; ".join(shown) + (f" ; et {more} autre{'s' if more > 1 else ''}" if more > 0 else "")
        what = f"« {self.matched_text} »" if self.matched_text else "ce que vous indiquez"
        kind = "communes" if self.candidates else "intercommunalités"
        return f"Plusieurs {kind} correspondent à {what} : {listing}. De laquelle s'agit-il ?"


def population_label(population: int | None) -> str:
    if population is None:
        return "population inconnue"
    return f"{population:,}".replace(",", "\u202f") + " habitants"


# --- resolver internals ----------------------------------------------------------------------

_STRONG_HEADS = (
    ("commune",),
    ("commune", "nouvelle"),
    ("commune", "deleguee"),
    ("commune", "associee"),
    ("mairie",),
    ("maire",),
    ("maire", "delegue"),
    ("maire", "deleguee"),
    ("maires",),
    ("ville",),
    ("village",),
    ("municipalite",),
    ("conseil", "municipal"),
    ("elu",),
    ("elue",),
    ("elus",),
    ("elues",),
)
PLACE_HEADS = frozenset(head[0] for head in _STRONG_HEADS) | {"bourg", "petite", "communes", "villages"}
# Only "de": "la commune a voté" has the verb avoir, not the place "à".
STRONG_CUES = frozenset(head + (prep,) for head in _STRONG_HEADS for prep in ("de", "d", "du", "des"))
LOCATIVE = frozenset({"a", "au", "aux"})
WEAK = LOCATIVE | {"de", "d", "du", "des", "sur", "pour", "vers", "depuis", "pres", "proche", "autour", "entre"}
DEP_CUES = frozenset({"dans", "en", "a", "du", "des", "de", "d", "le", "la", "l", "les", "departement", "region"})
DEP_STRONG_CUES = frozenset({"dans", "en"})
DEP_WORDS = frozenset({"departement", "departements", "departemental", "dpt", "dept", "prefecture", "prefet", "region"})
# Départements named after a river or a massif: "les berges de la Loire" is no place to route to.
RIVERS = frozenset(
    "ain aisne allier ardeche ariege aube aude aveyron charente cher correze creuse dordogne doubs drome eure gard"
    " gers gironde indre isere jura loir loire lot marne mayenne meuse moselle oise orne rhone sarthe seine somme tarn"
    " var vendee vienne vosges yonne".split()
)
# Nouns that make « de la Loire » the river, not the département.
RIVER_NOUNS = frozenset(
    "berge berges rive rives bord bords crue crues cours vallee vallees gorges source sources eaux lit embouchure"
    " estuaire affluent affluents confluence meandres fleuve riviere barrage bassin".split()
)
UNITS = frozenset(
    "habitants habitant hab h euros euro eur e k m m2 m3 ha km km2 logements logement places eleves metres ml"
    " kw kwh mwh".split()
)
CONTRACTED = {"au": "le", "du": "le", "aux": "les", "des": "les"}
# Things that bear a proper name: a commune name in apposition to one of them is that thing's name
# (« l'église Saint-Martin », « l'école Saint-Exupéry », « la rue Saint-Roch », « le lotissement Saint-Jean »),
# not the asker's place. Last word of the noun phrase (« groupe scolaire », « école maternelle »: the
# adjective is the word right before the name). Nouns read on the 2018 DETR/DSIL titles (tuned on) where a
# commune was read in apposition outside the title's département; python -m evals.place_in_titles measures
# the rule on the Fonds vert 2023 titles, which carry their real commune (held out).
NAMED_BUILDINGS = frozenset(
    """
    eglise eglises chapelle chapelles basilique cathedrale collegiale abbaye abbatiale prieure couvent temple
    clocher oratoire calvaire croix presbytere ecole ecoles college lycee scolaire maternelle elementaire primaire
    creche salle gymnase stade piscine halle paroissiale paroissial culturel sportif sportive theatre cinema musee
    mediatheque bibliotheque hopital hospice ehpad foyer chateau manoir cimetiere caveau fontaine lavoir domaine
    """.split()
)
# Ways and sites named after somewhere: « la route de Saint-Martin » leads there, « la rue de Verdun »,
# « le hameau de Saint-Jean » belong to another commune. After them a name is not the place, with « de »
# too; a building's « de » names its commune (« l'école de Neuvic », « la mairie de Saint-Martin »).
NAMED_WAYS = frozenset(
    """
    rue rues ruelle route routes chemin chemins avenue boulevard bd allee allees impasse place placette square quai
    promenade esplanade sentier passage faubourg quartier quartiers lotissement residence cite ilot clos zac zae za
    zi hameau hameaux pont moulin carrefour parc jardin
    """.split()
)
OF = frozenset({"de", "d", "du", "des"})
_URL = screened(r"\b(?:https?://|www\.)\S+|\S+@\S+\.\w+|\S+\.(?:gouv|fr|com|org|net|eu)(?:/\S*)?\b")
NUMERIC_CONTEXT = frozenset(
    "de d a plus moins environ pres budget montant cout total soit pour sur par x et ou entre jusqu hauteur dont avec"
    " n no numero".split()
)
_TRAILING_DEP = re.compile(r"\s*[,-]?\s*(\d{2,3}|2[AaBb])\b(?!\s*(?:%|€|[a-zA-Zé]))")
# A département beside a name: in parentheses, or after "dans (le|la|l')" / "en" (comma allowed).
_BESIDE = re.compile(
    r"\s*(?:\(\s*([^()]{2,40}?)\s*\)|,?\s*(?:dans|en)\s+((?:(?:le|la|les)\s+|l')?[\w'-]+(?:[ -][\w'-]+){0,3})"
    r"|,\s*((?:(?:le|la|les)\s+|l')?[\w'-]+(?:[ -][\w'-]+){0,3}))",
    re.IGNORECASE,
)
SENTENCE_BREAK = re.compile(r"[.!?\n:;]")
DEP_CODE_PATTERNS = (  # assistant.patterns: the case-sensitive ones run only on a text holding their literals
    screened(r"\((\d{2,3}|2[AaBb])\)"),
    re.compile(r"\b(?:d[ée]partements?|d[ée]pts?|dép)\.?\s*(?:n°\s*)?(\d{2,3}|2[AaBb])\b", re.IGNORECASE),
    re.compile(r"\bdans\s+l[ea]\s+(\d{2,3}|2[AaBb])\b", re.IGNORECASE),
    screened(r"(?<![\w-])(2[AB])(?![\w-])"),
)
REGION_ACRONYMS = {"paca": "93", "aura": "84", "idf": "11", "bfc": "27", "hdf": "32", "ara": "84"}

EPCI_PREFIXES = (
    ("communaute", "de", "communes"),
    ("communaute", "des", "communes"),
    ("communaute", "de", "commune"),
    ("communaute", "d", "agglomeration"),
    ("communaute", "d", "agglo"),
    ("communaute", "agglomeration"),
    ("communaute", "urbaine"),
    ("com", "com"),
    ("comcom",),
    ("cdc",),
    ("cc",),
    ("ca",),
    ("cu",),
    ("agglomeration",),
    ("agglo",),
    ("metropole",),
    ("eurometropole",),
    ("intercommunalite",),
    ("interco",),
    ("epci",),
    ("communaute",),
)
UPPERCASE_ONLY_PREFIXES = {("ca",), ("cu",), ("cdc",)}  # "ça", "cu" are words
# EPCI_PREFIXES by their first word, in EPCI_PREFIXES' order (the first that matches wins): a word of
# the message tries only the prefixes it can start, not all of them.
EPCI_PREFIXES_BY_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {
    first: tuple(p for p in EPCI_PREFIXES if p[0] == first) for first in dict.fromkeys(p[0] for p in EPCI_PREFIXES)
}
EPCI_SUFFIXES = frozenset({"communaute", "agglo", "agglomeration", "metropole"})
EPCI_TYPE_WORDS = EPCI_SUFFIXES | {"eurometropole"}
_DATA_PREFIX = re.compile(r"^(?:cc|ca|cu|metropole|eurometropole)\s+")
_LEADING_JOINERS = re.compile(r"^(?:(?:de|du|des|d|l|la|le|les)\s+)+")


@dataclass
class _Token:
    norm: str
    start: int
    end: int
    cap: bool
    initial: bool  # first word of a sentence
    glued: bool  # joined to the next token by a hyphen or an apostrophe
    hyphen: bool = False  # joined to the next token by a hyphen


@dataclass
class _Match:
    kind: str  # commune, postal, insee, epci, departement, region
    ids: list  # commune codes, EPCI sirens, département or région codes
    start: int  # token range [start, end)
    end: int
    strength: int  # 3 strong cue or code, 2 weak cue, 1 distinctive name alone
    text: str
    former: str | None = None
    hint_only: bool = False  # narrows homonyms but is not enough to name a département


def content_positions(tokens: list[str]) -> list[int]:
    """Positions of the words that carry a name (normalised words): articles at its start dropped, other
    JOINERS dropped only where they join two words. A joiner at an end joins nothing and is a word of the
    name: « Saint-Lô » is (saint, lo), « Castelnau-le-Lez » (castelnau, lez), « Sous-Parsat » (sous,
    parsat); « Le Pin » is (pin,), « Bar-le-Duc » (bar, duc)."""
    start = 0
    while start < len(tokens) and tokens[start] in ARTICLES:
        start += 1
    last = len(tokens) - 1
    return [k for k in range(start, len(tokens)) if tokens[k] not in JOINERS or k in (start, last)]


def _content(tokens: list[str]) -> list[str]:
    return [tokens[k] for k in content_positions(tokens)]


def _epci_core(name: str) -> str:
    key = _DATA_PREFIX.sub("", normalize(name))
    return _LEADING_JOINERS.sub("", key)


class Territories:
    """The INSEE geography, indexed for lookups and for resolve()."""

    def __init__(
        self,
        communes: list[Commune],
        epcis: list[Epci],
        departements: list[Departement],
        regions: list[Region],
        former_names: list[tuple[str, str]] = (),
        alias_codes: dict[str, str] | None = None,
        meta: dict | None = None,
        common_names: Iterable[str] = (),
    ):
        """common_names: normalised commune names that are ordinary words (COMMON_NAMES_FILE)."""
        self.meta = meta or {}
        self._common_names = frozenset(common_names)
        self._common_words = GRAMMAR_WORDS | {w for n in self._common_names for w in _content(n.split())}
        self.communes = {c.code: c for c in communes}
        self.epcis = {e.siren: e for e in epcis}
        self.departements = {d.code: d for d in departements}
        self.regions = {r.code: r for r in regions}
        self.alias_codes = alias_codes or {}
        self.by_postal_code: dict[str, list[Commune]] = {}
        self._communes_per_dep: dict[str, int] = {}
        for c in communes:
            self._communes_per_dep[c.departement] = self._communes_per_dep.get(c.departement, 0) + 1
            for cp in c.postal_codes:
                self.by_postal_code.setdefault(cp, []).append(c)
        self._build_index(former_names)

    def _is_common(self, key: str) -> bool:
        """Whether a name (normalised) reads as ordinary words: grammar words, an ordinary-word
        commune name ("sens", "la fleche"), or words that are each one of those ("bois colombes")."""
        if key in self._common_names:
            return True
        content = _content(key.split())
        if len(content) >= 2 and content[0] in SAINTS:
            return False
        if not content:
            return True
        if len(content) == 1 and len(content[0]) <= 2:
            return True
        return all(t in self._common_words for t in content)

    # -- loading --

    @classmethod
    def load(cls, corpus_dir: Path, cache_dir: Path | None = None) -> Territories:
        """Territories of corpus_dir/territoires (or corpus_dir itself); cached per directory.

        cache_dir (DATA_DIR/cache): the indexed tables are kept there as a pickle the first time and
        read back afterwards (≈ 0.1 s of CPU against ≈ 0.3–0.4 s to index 35,000 communes again), under
        a name made of the tables' contents, this module's source and the Python version (any change
        indexes them again). A copy that cannot be written or read is skipped."""
        return _load(str(_tables_dir(corpus_dir)), str(cache_dir) if cache_dir is not None else None)

    @classmethod
    def check(cls, corpus_dir: Path) -> None:
        """Raise FileNotFoundError (the message load() gives) when a table is missing, without loading."""
        for name in TABLES:
            _table_path(_tables_dir(corpus_dir), name)

    # -- lookups --

    def commune(self, code: str) -> Commune | None:
        """By INSEE code, current or superseded (commune déléguée, arrondissement municipal)."""
        code = code.strip().upper()
        return self.communes.get(code) or self.communes.get(self.alias_codes.get(code, ""))

    def communes_by_postal_code(self, postal_code: str) -> list[Commune]:
        return sorted(self.by_postal_code.get(postal_code.strip(), []), key=_by_population)

    def epci(self, siren: str) -> Epci | None:
        return self.epcis.get(siren.strip().replace(" ", ""))

    def departement(self, code: str) -> Departement | None:
        code = code.strip().upper()
        return self.departements.get(code.zfill(2) if code.isdigit() else code)

    def region(self, code: str) -> Region | None:
        return self.regions.get(code.strip())

    def epci_of(self, commune: Commune) -> Epci | None:
        return self.epcis.get(commune.epci) if commune.epci else None

    def departement_of(self, commune: Commune) -> Departement:
        return self.departements[commune.departement]

    def region_of(self, commune: Commune) -> Region:
        return self.regions[commune.region]

    def communes_named(self, name: str) -> list[Commune]:
        """Current communes of that name (accents, hyphens, St/Ste, leading article ignored), largest first."""
        key = normalize(name)
        found = {code for kind, ids, _ in self._names.get(key, []) if kind == "commune" for code in ids}
        return sorted((self.communes[c] for c in found), key=_by_population)

    def resolution_of(self, commune: Commune, matched_text: str | None = None, former_name: str | None = None) -> Resolution:
        """The commune with its EPCI, département and région, as resolve() gives a commune named alone."""
        return Resolution(
            commune=commune,
            epci=self.epci_of(commune),
            departement=self.departements[commune.departement],
            region=self.regions[commune.region],
            matched_text=matched_text,
            level=Audience.commune,
            former_name=former_name,
        )

    def label(self, commune: Commune) -> str:
        return f"{commune.name} ({self.departements[commune.departement].name}, {population_label(commune.population)})"

    # -- index --

    def _add(self, key: str, kind: str, ident: str, article: str | None = None) -> None:
        bucket = self._names.setdefault(key, [])
        for k, ids, art in bucket:
            if k == kind and art == article:
                if ident not in ids:
                    ids.append(ident)
                return
        bucket.append((kind, [ident], article))

    def _build_index(self, former_names) -> None:
        # key -> [(kind, ids, dropped article)]; an entry with a dropped article needs "au/du..." or
        # a multi-word rest to match ("Puy-en-Velay", "du Havre").
        self._names: dict[str, list[tuple[str, list[str], str | None]]] = {}
        for c in self.communes.values():
            key = normalize(c.name)
            self._add(key, "commune", c.code)
            first, _, rest = key.partition(" ")
            if first in ARTICLES and rest:
                self._add(rest, "commune", c.code, article=first)
        current = set(self._names)
        for name, parent in former_names:
            key = normalize(name)
            if key not in current and parent in self.communes:
                self._add(key, "former", parent)
        for d in self.departements.values():
            self._add(normalize(d.name), "departement", d.code)
        for r in self.regions.values():
            self._add(normalize(r.name), "region", r.code)
        self._add("ile de france", "region", "11")
        self._add("region centre", "region", "24")

        self._epci_cores: dict[str, list[str]] = {}
        for e in self.epcis.values():
            core = _epci_core(e.name)
            cores = {core, normalize(e.name), _DATA_PREFIX.sub("", normalize(e.name))}
            tokens = core.split()
            if len(tokens) > 1 and tokens[-1] in EPCI_TYPE_WORDS:
                cores.add(_LEADING_JOINERS.sub("", " ".join(tokens[:-1])))
            if len(tokens) > 1 and tokens[0] in EPCI_TYPE_WORDS:
                cores.add(_LEADING_JOINERS.sub("", " ".join(tokens[1:])))
            for key in cores - {""}:
                self._epci_cores.setdefault(key, [])
                if e.siren not in self._epci_cores[key]:
                    self._epci_cores[key].append(e.siren)

        self._prefixes: set[str] = set()
        for key in list(self._names) + list(self._epci_cores):
            self._prefixes.add(key)
            self._prefixes.update(key[:m.start()] for m in re.finditer(" ", key))
        self._max_tokens = max(k.count(" ") + 1 for k in self._names)

        # Names by length, for typo-tolerant search with a bounded edit distance.
        self._fuzzy_by_len: dict[int, list[str]] = {}
        for key, entries in self._names.items():
            if any(kind in ("commune", "former") and art is None for kind, _, art in entries):
                self._fuzzy_by_len.setdefault(len(key), []).append(key)
        self._fuzzy_cache: dict[tuple[str, int], list[str]] = {}
        self._epci_by_len: dict[int, list[str]] = {}
        for key in self._epci_cores:
            self._epci_by_len.setdefault(len(key), []).append(key)

    # -- resolution --

    def resolve(self, text: str) -> Resolution:
        """Find the commune, EPCI, département or région that a French question mentions."""
        text = _URL.sub(lambda m: " " * len(m.group()), text)
        tokens = _tokenize(text, self._common_words)
        if not tokens:
            return Resolution()
        matches: list[_Match] = []
        matches += self._code_matches(text, tokens)
        matches += self._epci_matches(text, tokens)
        matches += self._name_matches(text, tokens)
        covered = _select(matches)
        matches_fuzzy = self._fuzzy_matches(text, tokens, covered)
        chosen = _select_all(covered + matches_fuzzy)
        return self._combine(chosen)

    def _code_matches(self, text: str, tokens: list[_Token]) -> list[_Match]:
        found = []
        norms = [t.norm for t in tokens]
        for i, tok in enumerate(tokens):
            word = tok.norm
            code_like = len(word) == 5 and (word.isdigit() or (word[:2] in ("2a", "2b") and word[2:].isdigit()))
            if not code_like and not (len(word) == 9 and word.isdigit()):
                continue  # neither an INSEE code, a postcode nor a SIREN: nothing below can match
            following = norms[i + 1] if i + 1 < len(norms) else ""
            if following in UNITS or text[tok.end :].lstrip()[:1] in ("€", "%", "²", "$"):
                continue
            before = norms[max(0, i - 3) : i]
            if code_like:
                code = word.upper()
                insee_first = "insee" in before or "cog" in before
                labelled = insee_first or "postal" in before or "cp" in before
                if not labelled and before and (before[-1] in NUMERIC_CONTEXT or before[-1].isdigit()):
                    continue  # "un budget de 15000", "entre 10000 et 20000"
                by_cp = [c.code for c in self.by_postal_code.get(code, [])] if code.isdigit() else []
                commune = self.commune(code)
                if by_cp and not insee_first:
                    found.append(_Match("postal", by_cp, i, i + 1, 3, text[tok.start : tok.end]))
                elif commune:
                    found.append(_Match("insee", [commune.code], i, i + 1, 3, text[tok.start : tok.end]))
                elif by_cp:
                    found.append(_Match("postal", by_cp, i, i + 1, 3, text[tok.start : tok.end]))
            elif word in self.epcis:
                found.append(_Match("epci", [word], i, i + 1, 3, text[tok.start : tok.end]))
        for pattern in DEP_CODE_PATTERNS:
            for m in pattern.finditer(text):
                code = m.group(1).upper()
                if code in self.departements:
                    i = next((k for k, t in enumerate(tokens) if t.start >= m.start(1)), len(tokens) - 1)
                    found.append(_Match("departement", [code], i, i + 1, 3, m.group(1)))
        return found

    def _epci_matches(self, text: str, tokens: list[_Token]) -> list[_Match]:
        norms = [t.norm for t in tokens]
        found = []
        i = 0
        while i < len(tokens):
            prefix = next(
                (
                    p
                    for p in EPCI_PREFIXES_BY_FIRST.get(norms[i], ())
                    if tuple(norms[i : i + len(p)]) == p
                    and (p not in UPPERCASE_ONLY_PREFIXES or text[tokens[i].start : tokens[i].end].isupper())
                ),
                None,
            )
            if not prefix:
                i += 1
                continue
            j = i + len(prefix)
            while j < len(tokens) and norms[j] in ("de", "du", "des", "d", "l", "la", "le", "les"):
                j += 1
            if j == len(tokens):
                break
            joined = j > i + len(prefix)  # "agglo de X" names X; "l'agglo voisine" does not
            best = None
            for n in range(min(12, len(tokens) - j), 0, -1):
                key = " ".join(norms[j : j + n])
                # After a prefix, an official name is read whole across its own punctuation: « CC de Vitry,
                # Champagne et Der », « CC Castillon/Pujols », « CA de l'Albigeois (C2A) ».
                if key in self._epci_cores:
                    best = _Match("epci", list(self._epci_cores[key]), i, j + n, 3, _span(text, tokens, i, j + n))
                    break
            if best is None and (joined or tokens[j].cap):
                best = self._epci_by_town(text, tokens, i, j)
            if best is None and (tokens[j].cap or tokens[j].glued):
                best = self._fuzzy_epci(text, tokens, i, j)
            if best:
                found.append(best)
                i = best.end
            else:
                i += 1
        return found

    def _town_with_suffix(self, text, tokens, i, j, key) -> list[_Match]:
        """'Aurillac Agglo', 'Riom Communauté': the EPCI of that town, named the way people say it."""
        if _breaks(text, tokens, j - 1) or not (tokens[i].cap or tokens[i].glued) or self._is_common(key):
            return []
        codes = [c for kind, ids, art in self._names[key] if kind == "commune" and art is None for c in ids]
        sirens = sorted({self.communes[c].epci for c in codes} - {None})
        return [_Match("epci", sirens, i, j + 1, 3, _span(text, tokens, i, j + 1))] if sirens else []

    def _epci_by_town(self, text: str, tokens: list[_Token], start: int, j: int):
        """'agglo d'Aurillac', 'communauté de communes de Riom': the EPCI that the named commune belongs to."""
        norms = [t.norm for t in tokens]
        for n in range(min(self._max_tokens, len(tokens) - j), 0, -1):
            key = " ".join(norms[j : j + n])
            entries = [e for e in self._names.get(key, []) if e[0] == "commune" and (e[2] is None or n > 1)]
            if not entries or any(_breaks(text, tokens, k) for k in range(j, j + n - 1)):
                continue
            if self._is_common(key) and not tokens[j].cap:
                continue
            sirens = sorted({self.communes[c].epci for _, ids, _ in entries for c in ids} - {None})
            if sirens:
                return _Match("epci", sirens, start, j + n, 3, _span(text, tokens, start, j + n))
        return None

    def _fuzzy_epci(self, text: str, tokens: list[_Token], start: int, j: int) -> _Match | None:
        norms = [t.norm for t in tokens]
        for n in range(min(8, len(tokens) - j), 0, -1):
            if norms[j + n - 1] in JOINERS or any(_breaks(text, tokens, k) for k in range(j, j + n - 1)):
                continue
            query = " ".join(norms[j : j + n])
            if len(query) < 6 or self._is_common(query):
                continue
            hits = self._nearest(query, self._epci_by_len)
            if hits:
                sirens = sorted({s for key in hits for s in self._epci_cores[key]})
                return _Match("epci", sirens, start, j + n, 3, _span(text, tokens, start, j + n))
        return None

    def _name_matches(self, text: str, tokens: list[_Token]) -> list[_Match]:
        norms = [t.norm for t in tokens]
        whole_tokens = len(tokens)
        found = []
        for i in range(len(tokens)):
            key = ""
            for j in range(i, min(len(tokens), i + self._max_tokens)):
                if j > i and _breaks(text, tokens, j - 1):
                    break
                key = norms[j] if j == i else f"{key} {norms[j]}"
                if key not in self._prefixes:
                    break
                if key in self._names:
                    found += self._judge_name(text, tokens, i, j + 1, key, whole=(i == 0 and j + 1 == whole_tokens))
                if key in self._epci_cores:
                    found += self._judge_epci_core(text, tokens, i, j + 1, key)
                elif key in self._names and j + 1 < len(tokens) and norms[j + 1] in EPCI_SUFFIXES:
                    found += self._town_with_suffix(text, tokens, i, j + 1, key)
        acronyms = [
            _Match("region", [REGION_ACRONYMS[t.norm]], i, i + 1, 2, text[t.start : t.end])
            for i, t in enumerate(tokens)
            if t.norm in REGION_ACRONYMS and text[t.start : t.end].isupper()
        ]
        return found + acronyms

    def _judge_name(self, text, tokens, i, j, key, whole) -> list[_Match]:
        norms = [t.norm for t in tokens]
        before = norms[max(0, i - 3) : i]
        prev = before[-1] if before else ""
        span_text = _span(text, tokens, i, j)
        first = tokens[i]
        # A capital counts unless it only starts a sentence; an article may precede it ("le Puy").
        content_start = next((k for k in range(i, j) if norms[k] not in ARTICLES), i)
        cap = tokens[content_start].cap and not (first.initial and content_start == i)
        strong = any(tuple(before[-n:]) in STRONG_CUES for n in (2, 3) if len(before) >= n)
        after = text[tokens[j - 1].end :]
        next_norm = norms[j] if j < len(norms) else ""
        if (
            re.match(r"\s*\((\d{2,3}|2[AaBb])\)", after)
            or (i > 0 and len(norms[i - 1]) == 5 and norms[i - 1].isdigit())
            or (len(next_norm) == 5 and next_norm.isdigit())
        ):
            strong = True  # "Murat (15)", "15100 Saint-Flour", "Saint-Flour 15100"
        beside = self._departement_beside(after)
        if beside and any(
            self.communes[c].departement == beside for kind, ids, _ in self._names[key] if kind == "commune" for c in ids
        ):
            strong = beside_here = True  # "Saint-Martin (Gers)", "Aubusson dans le 23", "Murat, dans le Cantal"
        else:
            beside_here = False
        weak = prev in WEAK
        locative = prev in LOCATIVE
        if j - i == 1 and tokens[i].cap and _acronym(text, tokens[i]) and not whole:
            return []
        if tokens[j - 1].hyphen or _continues_a_name(tokens, i):
            return []  # part of a longer hyphenated name: "Clermont" in "Clermont-Ferand", "Eure" in "Saint-André-de-l'Eure"
        if not strong and _names_a_thing(text, tokens, i):
            return []  # « l'église Saint-Martin », « la route de Saint-Martin »: the name of a thing, no place
        common = self._is_common(key)
        content = _content(key.split())
        distinctive = len(content) >= 2 and not common
        results = []
        entries = self._names[key]
        dep_entries = [e for e in entries if e[0] in ("departement", "region")]
        head, _, rest = key.partition(" ")
        if head in ARTICLES and rest:  # "de la Marne" is the département, not La Marne (44)
            dep_entries += [e for e in self._names.get(rest, []) if e[0] in ("departement", "region")]
        overseas = any(len(c) == 3 or c < "10" for _, ids, _ in dep_entries for c in ids)
        commune_taken = False
        for kind, ids, article in entries:
            if article is not None:
                # "Puy-en-Velay" without "Le", or "du Havre" for "Le Havre".
                if not (len(content) >= 2 or CONTRACTED.get(prev) == article or (article == "l" and prev == "d")):
                    continue
            if kind in ("commune", "former"):
                if whole:
                    ok = not common
                elif common:  # "à Sens", "maire de Sens", "Sens dans le 89": never "le sens de la vie"
                    ok = (cap and (strong or locative)) or beside_here or (
                        # « de Pont-de-Vaux », « Château-Gaillard : … »: ordinary words joined in one capitalised
                        # name; never after an article (« du Vieux-Port », « le Vieux-Bourg » are sites)
                        len(content) >= 2 and key not in self._common_names and article is None
                        and prev not in ARTICLES and prev not in CONTRACTED and tokens[content_start].cap
                        and (all(tokens[k].glued for k in range(i, j - 1)) or _fills_a_part(text, tokens, i, j))
                    )
                elif distinctive:
                    ok = not (content[0] == "saint" and prev == "la")  # "la Saint-Jean" is a feast day
                else:  # one word, or one with its article: a cue, or a capital alone in a part of a title
                    ok = strong or (cap and weak) or (tokens[content_start].cap and _fills_a_part(text, tokens, i, j))
                if not ok:
                    continue
                # "la Creuse", "en Mayenne": the département wins; "à Mayenne" is the town, but
                # "à La Réunion" is the island.
                # "élu de la Creuse" (article in lower case in a mixed-case text) is the département;
                # "maire de La Creuse" is the commune of Haute-Saône.
                lower_article = head in ARTICLES and text[tokens[i].start].islower() and any(c.isupper() for c in text)
                if dep_entries and not (
                    (strong and not lower_article) or (locative and not overseas) or self._sole_commune_of(key, dep_entries)
                ):
                    continue
                strength = 3 if strong else 2 if weak else 1
                former = span_text if kind == "former" else None
                results.append(_Match("commune", list(ids), i, j, strength, span_text, former))
                commune_taken = True
                number = _TRAILING_DEP.match(after) if len(ids) > 1 else None
                if number and number.group(1).upper() in self.departements:
                    # "Saint-Martin, 32": a bare number right after homonyms is their département.
                    code = number.group(1).upper()
                    results.append(_Match("departement", [code], j, j + 1, 2, number.group(1), hint_only=True))
                elif beside and len(ids) > 1:
                    results.append(_Match("departement", [beside], j, j + 1, 2, after.strip()[:40], hint_only=True))
            elif not commune_taken:  # the same words name one thing: Paris, Saint-Martin
                cued = prev in DEP_CUES
                article_dropped = before[:-1] if prev in ARTICLES else before  # "dans | la | Loire"
                sure = bool(article_dropped) and article_dropped[-1] in DEP_STRONG_CUES
                sure = sure or whole or any(w in DEP_WORDS or w in PLACE_HEADS for w in before)  # "village du Cher"
                # "de la Creuse", "de l'Orne" (but "les berges de la Loire" is the river)
                of_the = prev in ARTICLES and article_dropped[-1:] in (["de"], ["d"])
                sure = sure or (of_the and not (len(article_dropped) >= 2 and article_dropped[-2] in RIVER_NOUNS))
                if common:
                    # Lower case: "dans la creuse", "département du cher", "mairie du cantal"; never "en somme", "de la marne",
                    # "du lot 2" nor "dans la somme de 5 000 €" (a noun with its complement).
                    lower_ok = (sure and not of_the and prev in ARTICLES) or any(
                        w in DEP_WORDS or w in PLACE_HEADS for w in before
                    )
                    lower_ok = lower_ok and next_norm not in ("de", "d", "du", "des")
                    ok = ((cap or whole) and (cued or whole)) or lower_ok
                else:
                    ok = cap or cued or whole or len(content) >= 2
                if ok:
                    hint_only = key in RIVERS and not sure
                    results.append(_Match(kind, list(ids), i, j, 3 if cued else 2, span_text, hint_only=hint_only))
        return results

    def _departement_beside(self, after: str) -> str | None:
        """The département written right after a name: "(Gers)", "(32)", "dans le 32", "en Haute-Marne",
        ", dans l'Orne", ", Jura". Returns its code, or None."""
        m = _BESIDE.match(after)
        if not m:
            return None
        inside = m.group(1) is not None  # "(…)": the whole content must be the département
        words = normalize(m.group(1) if inside else m.group(2) or m.group(3)).split()
        starts = [words, words[1:]] if words and words[0] in ARTICLES else [words]  # "la Réunion", "le Gers"
        for start in starts:
            if start and start[0].upper() in self.departements and (len(start) == 1 or not inside):
                return start[0].upper()  # "(32)", "dans le 32"
            for n in [len(start)] if inside else range(min(5, len(start)), 0, -1):
                key = " ".join(start[:n])
                codes = [c for kind, ids, _ in self._names.get(key, []) if kind == "departement" for c in ids]
                if codes:
                    return codes[0]
        return None

    def _sole_commune_of(self, key: str, dep_entries) -> bool:
        """True for Paris, Saint-Martin, Saint-Barthélemy: a département made of one commune of that name."""
        codes = [c for kind, ids, _ in dep_entries if kind == "departement" for c in ids]
        named = {c.departement for c in self.communes_named(key)}
        return any(self._communes_per_dep.get(d) == 1 and d in named for d in codes)

    def _judge_epci_core(self, text, tokens, i, j, key) -> list[_Match]:
        """An EPCI core without prefix: 'Saint-Flour Communauté', 'Bordeaux Métropole', 'le Grand Reims'."""
        if _names_a_thing(text, tokens, i):
            return []  # « l'église Saint-Philbert-de-Grand-Lieu » names no Grand Lieu Communauté
        norms = [t.norm for t in tokens]
        nxt = norms[j] if j < len(norms) else ""
        key_tokens = key.split()
        if nxt in EPCI_SUFFIXES and not _breaks(text, tokens, j - 1):
            return [_Match("epci", list(self._epci_cores[key]), i, j + 1, 3, _span(text, tokens, i, j + 1))]
        if key_tokens[-1] in EPCI_TYPE_WORDS or key_tokens[0] in EPCI_TYPE_WORDS:
            return [_Match("epci", list(self._epci_cores[key]), i, j, 2, _span(text, tokens, i, j))]
        content = _content(key_tokens)
        cap = tokens[i].cap and not tokens[i].initial
        if len(content) >= 2 and cap and not self._is_common(key) and key not in self._names:
            return [_Match("epci", list(self._epci_cores[key]), i, j, 1, _span(text, tokens, i, j))]
        return []

    def _fuzzy_matches(self, text: str, tokens: list[_Token], taken: list[_Match]) -> list[_Match]:
        """Typos in names: only where the phrasing already signals a place, with few edits allowed.

        Not in a text written in capitals: there a capital signals nothing, and any word one edit
        away from a commune (« BESOIN » / Bédoin) would be taken for it."""
        if not any(c.islower() for c in text):
            return []
        used = set()
        for m in taken:
            used.update(range(m.start, m.end))
        norms = [t.norm for t in tokens]
        found = []
        i = 0
        while i < len(tokens):
            if i in used or norms[i] in JOINERS or norms[i].isdigit():
                i += 1
                continue
            before = norms[max(0, i - 3) : i]
            strong = any(tuple(before[-n:]) in STRONG_CUES for n in (2, 3) if len(before) >= n)
            weak = bool(before) and before[-1] in WEAK
            cap = tokens[i].cap and not tokens[i].initial
            locative = bool(before) and before[-1] in LOCATIVE
            named = tokens[i].glued or norms[i] in SAINTS  # "de Saint-Flourr", "de Puy-en-Velai"
            if not (strong or (cap and (locative or (weak and named)))) or (not strong and _names_a_thing(text, tokens, i)):
                i += 1
                continue
            end = i
            while end < len(tokens) and end - i < 8 and end not in used and not norms[end].isdigit():
                if end > i and _breaks(text, tokens, end - 1):
                    break
                if end > i and not (tokens[end - 1].glued or tokens[end].cap or norms[end] in JOINERS):
                    break
                end += 1
            match = None
            for stop in range(end, i, -1):
                if norms[stop - 1] in JOINERS:
                    continue
                key = " ".join(norms[i:stop])
                lower = not any(t.cap for t in tokens[i:stop])
                hyphenated = any(t.glued for t in tokens[i : stop - 1])
                if len(key) < 5 or self._is_common(key) or key in self._names:
                    continue
                if lower and not (hyphenated or len(_content(key.split())) >= 2):
                    continue
                if stop - i == 1 and (len(key) < 6 or _acronym(text, tokens[i])):
                    continue
                hits = [h for h in self._nearest(key, self._fuzzy_by_len) if not self._is_common(h)]
                if hits:
                    entries = [(k, ids) for h in hits for k, ids, _ in self._names[h] if k in ("commune", "former")]
                    codes = self._likely_typo_target(sorted({c for _, ids in entries for c in ids}))
                    written = _span(text, tokens, i, stop)
                    former = written if all(kind == "former" for kind, _ in entries) else None
                    match = _Match("commune", codes, i, stop, 3 if strong else 2, written, former)
                    break
            if match:
                found.append(match)
                i = match.end
            else:
                i += 1
        return found

    def _nearest(self, query: str, by_len: dict[int, list[str]]) -> list[str]:
        cache_key = (query, id(by_len))
        if cache_key not in self._fuzzy_cache:
            if len(self._fuzzy_cache) > 4096:
                self._fuzzy_cache.clear()
            self._fuzzy_cache[cache_key] = _nearest(query, by_len)
        return self._fuzzy_cache[cache_key]

    def _likely_typo_target(self, codes: list[str]) -> list[str]:
        """Among names one typo away, a town ten times larger than all the others together is meant."""
        if len(codes) < 2:
            return codes
        ranked = sorted(codes, key=lambda c: -(self.communes[c].population or 0))
        top = self.communes[ranked[0]].population or 0
        rest = sum(self.communes[c].population or 0 for c in ranked[1:])
        return ranked[:1] if top >= 10 * max(rest, 1) else codes

    def _combine(self, matches: list[_Match]) -> Resolution:
        dep_hints = [c for m in matches if m.kind == "departement" for c in m.ids]
        region_hints = [c for m in matches if m.kind == "region" for c in m.ids]
        epci_hints = [s for m in matches if m.kind == "epci" for s in m.ids]
        commune_matches = [m for m in matches if m.kind in ("commune", "postal", "insee")]

        if commune_matches:
            main = max(commune_matches, key=lambda m: (m.strength, m.kind == "commune", -m.start))
            pool = set(main.ids)
            for other in commune_matches:
                if other is not main and (narrowed := pool & set(other.ids)):
                    pool = narrowed
            for hints, attr in ((dep_hints, "departement"), (region_hints, "region")):
                narrowed = {c for c in pool if getattr(self.communes[c], attr) in hints}
                if narrowed:
                    pool = narrowed
            narrowed = {c for c in pool if self.communes[c].epci in epci_hints}
            if narrowed:
                pool = narrowed
            candidates = sorted((self.communes[c] for c in pool), key=_by_population)
            if len(candidates) == 1:
                return self.resolution_of(candidates[0], matched_text=main.text, former_name=main.former)
            deps = {c.departement for c in candidates}
            regions = {c.region for c in candidates}
            epcis = {c.epci for c in candidates}
            dep = self.departements[deps.pop()] if len(deps) == 1 else self._first(dep_hints, self.departements)
            region = self.regions[regions.pop()] if len(regions) == 1 else self._first(region_hints, self.regions)
            epci = self.epcis.get(epcis.pop()) if len(epcis) == 1 else self._first(epci_hints, self.epcis)
            return Resolution(
                epci=epci,
                departement=dep,
                region=region or (self.regions[dep.region] if dep else None),
                candidates=candidates,
                candidate_labels=[self.label(c) for c in candidates],
                ambiguous=True,
                matched_text=main.text,
                level=Audience.commune,
                former_name=main.former,
            )

        if epci_hints:
            main = next(m for m in matches if m.kind == "epci")
            if len(set(main.ids)) > 1:
                # Several EPCI fit the words given: name them rather than pick one.
                options = sorted((self.epcis[s] for s in set(main.ids)), key=lambda e: -(e.population or 0))
                return Resolution(
                    epci_candidates=options,
                    candidate_labels=[f"{e.name} ({population_label(e.population)})" for e in options],
                    ambiguous=True,
                    matched_text=main.text,
                    level=Audience.epci,
                )
            epci = self.epcis[main.ids[0]]
            deps = {self.communes[c].departement for c in epci.members}
            regions = {self.communes[c].region for c in epci.members}
            dep = self.departements[next(iter(deps))] if len(deps) == 1 else self._first(dep_hints, self.departements)
            region = self.regions[next(iter(regions))] if len(regions) == 1 else None
            return Resolution(epci=epci, departement=dep, region=region, matched_text=main.text, level=Audience.epci)

        named = [m for m in matches if m.kind == "departement" and not m.hint_only]
        if named:
            main = named[0]
            dep = self.departements[main.ids[0]]
            return Resolution(
                departement=dep, region=self.regions[dep.region], matched_text=main.text, level=Audience.department
            )
        if region_hints:
            main = next(m for m in matches if m.kind == "region")
            return Resolution(region=self.regions[main.ids[0]], matched_text=main.text, level=Audience.region)
        return Resolution()

    @staticmethod
    def _first(hints, table):
        return table[hints[0]] if hints else None


# --- helpers ---------------------------------------------------------------------------------


def _by_population(c: Commune):
    return (-(c.population or 0), c.name, c.code)


def _tokenize(text: str, common_words: frozenset[str] = GRAMMAR_WORDS) -> list[_Token]:
    has_lower = any(ch.islower() for ch in text)
    tokens: list[_Token] = []
    last_end = 0
    for m in _WORD.finditer(text):
        word = m.group()
        gap = text[last_end : m.start()]
        initial = not tokens or (gap != " " and bool(SENTENCE_BREAK.search(gap)))  # most gaps are one space
        if tokens and gap in ("-", "'", "’"):
            tokens[-1].glued = True
            tokens[-1].hyphen = gap == "-"
        for part in _word_parts(word):
            # A text in capitals has no capital cue: a word that is no ordinary word reads as a name.
            cap = word[0].isupper() if has_lower else not (part in common_words or part in JOINERS or part.isdigit())
            tokens.append(_Token(_ABBREVIATIONS.get(part, part), m.start(), m.end(), cap, initial, False))
        last_end = m.end()
    return tokens


@lru_cache(maxsize=WORD_MEMO)
def _word_parts(word: str) -> tuple[str, ...]:
    """The folded parts of one word (a _WORD match) of a text: _fold, then split as _WORD again (« Œillé »
    -> ("oeille",), « m² » -> ("m2",)); memoised per word: a message is tokenised on every turn and
    questions reuse their words (one _fold per word cost a fifth of resolve)."""
    return tuple(_WORD.findall(_fold(word)))


def _acronym(text: str, token: _Token) -> bool:
    """SEM, PIA, SOS, CAUE: capitals in a mixed-case text are an acronym, not a commune."""
    word = text[token.start : token.end]
    return 2 <= len(word) <= 5 and word.isupper() and word.isalpha() and any(c.islower() for c in text)


def _continues_a_name(tokens: list[_Token], i: int) -> bool:
    """Whether token i continues a hyphenated name: after a hyphen (« Clermont-Ferrand »), or after an elided
    word itself after a hyphen (« Eure » in « Saint-André-de-l'Eure »)."""
    return i > 0 and (tokens[i - 1].hyphen or (i > 1 and tokens[i - 1].glued and tokens[i - 2].hyphen))


def _names_a_thing(text: str, tokens: list[_Token], i: int) -> bool:
    """Whether the name starting at token i is the proper name of a building, a way or a site rather than a
    place: in apposition to a NAMED_BUILDINGS or NAMED_WAYS noun (articles only between them, « l'église
    Saint-Martin »), or after « de » a NAMED_WAYS noun (« la route de Saint-Martin »). A name whose own first
    word is such a noun written in lower case (« la chapelle Saint-Martin » for La Chapelle-Saint-Martin)
    counts too when the text mixes cases (all in capitals or all in lower case, a case says nothing). Looks
    at a few tokens only (no scan of the communes)."""
    while _continues_a_name(tokens, i):
        i -= 1  # a part of a hyphenated name (« Vigne » in « Saint-Bonnet-de-Vieille-Vigne »): from its start
    k = i
    while k < len(tokens) and tokens[k].norm in ARTICLES:
        k += 1
    if k < len(tokens) and not tokens[k].hyphen and not tokens[k].cap:
        word = tokens[k].norm
        if (word in NAMED_BUILDINGS or word in NAMED_WAYS) and any(c.isupper() for c in text) and any(
            c.islower() for c in text
        ):
            return True
    k = i - 1
    joined = []
    while k >= 0 and tokens[k].norm in JOINERS and len(joined) < 3:
        joined.append(tokens[k].norm)
        k -= 1
    if k < 0 or any(text[tokens[m].end : tokens[m + 1].start].strip(" '’") for m in range(k, i)):
        return False  # only spaces or an elision between: « Quartier Piscine - Le Petit-Quevilly » names the place
    noun = tokens[k].norm
    if all(w in ARTICLES for w in joined):
        return noun in NAMED_BUILDINGS or noun in NAMED_WAYS
    return noun in NAMED_WAYS and joined[-1] in OF and all(w in ARTICLES for w in joined[:-1])


# What separates the parts of a title: « Izernore - Rénovation de l'éclairage », « Rénovation : Albias »,
# « (Les Ulmes) ». Not a hyphen glued to a word (« Saint- Aignan », « RD6113- Nimes »), a full stop (« L.Aragon »,
# « J. Verne » are people), quotes (« la friche « Bru » » names a site), a slash or a comma (« Esplanade/Cordesse »,
# « rues de Vignacourt, Carrière » list ways).
_PART_BREAK = re.compile(r"[:;!?()\[\]|–—]|\s-\s")


def _fills_a_part(text: str, tokens: list[_Token], i: int, j: int) -> bool:
    """Whether tokens [i, j) are a whole part of the text: nothing but a _PART_BREAK (or an end) on each side,
    as a commune is set apart in a project title (« Rénovation éclairage public - Izernore »)."""
    before = text[tokens[i - 1].end : tokens[i].start] if i else ""
    after = text[tokens[j - 1].end : tokens[j].start] if j < len(tokens) else ""
    return (not i or bool(_PART_BREAK.search(before))) and (j == len(tokens) or bool(_PART_BREAK.search(after)))


def _breaks(text: str, tokens: list[_Token], k: int) -> bool:
    """Whether punctuation separates token k from token k+1 (a name never spans a comma)."""
    gap = text[tokens[k].end : tokens[k + 1].start]
    return bool(gap.strip(" \t-'’"))


def _span(text: str, tokens: list[_Token], i: int, j: int) -> str:
    return text[tokens[i].start : tokens[j - 1].end]


def _max_edits(length: int) -> int:
    return 0 if length < 5 else 1 if length < 9 else 2 if length < 16 else 3


def _nearest(query: str, by_len: dict[int, list[str]]) -> list[str]:
    """Keys within the allowed edit distance of query, keeping only the closest ones."""
    k = _max_edits(len(query))
    if k == 0:
        return []
    best, hits = k + 1, []
    # Typos rarely touch the first letter; requiring it halves the false friends (Parlement/Marlemont).
    for length in range(len(query) - k, len(query) + k + 1):
        choices = by_len.get(length)
        if not choices:
            continue
        for key, dist, _ in process.extract(
            query, choices, scorer=Levenshtein.distance, score_cutoff=k, limit=None
        ):
            if key[0] != query[0]:
                continue
            if dist < best:
                best, hits = dist, [key]
            elif dist == best:
                hits.append(key)
    return hits


def _select(matches: list[_Match]) -> list[_Match]:
    """Longest non-overlapping matches; on equal spans keep every kind for _combine to weigh."""
    ordered = sorted(matches, key=lambda m: (-(m.end - m.start), -m.strength, m.start))
    kept: list[_Match] = []
    taken: set[int] = set()
    for m in ordered:
        span = set(range(m.start, m.end))
        if span & taken and not any((k.start, k.end) == (m.start, m.end) for k in kept):
            continue
        kept.append(m)
        taken |= span
    return kept


def _select_all(matches: list[_Match]) -> list[_Match]:
    return sorted(_select(matches), key=lambda m: m.start)


TABLES = ("regions.json", "departements.json", "communes.json.gz", "epci.json.gz", "anciennes.json.gz")


def _tables_dir(corpus_dir: Path) -> Path:
    corpus_dir = Path(corpus_dir)
    return (corpus_dir / "territoires" if (corpus_dir / "territoires").is_dir() else corpus_dir).resolve()


def _table_path(root: Path, name: str) -> Path:
    path = root / name
    if not path.exists():
        raise FileNotFoundError(f"{path} introuvable : reconstruire avec « aiguillage territories build TARBALL »")
    return path


@lru_cache(maxsize=4)
def _load(base: str, cache: str | None = None) -> Territories:
    root = Path(base)
    if cache is None:
        return _read_tables(root)
    import hashlib
    import os
    import pickle
    import sys

    key = hashlib.sha256(Path(__file__).read_bytes())
    key.update(f"py{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for name in (*TABLES, COMMON_NAMES_FILE, "meta.json"):
        path = root / name
        key.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"-") + b"\0")
    kept = Path(cache) / f"territories-{key.hexdigest()[:24]}.pkl"
    try:
        return pickle.loads(kept.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
        pass
    territories = _read_tables(root)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(territories, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, kept)
    except OSError:
        pass  # a read-only data directory: index the tables again next time
    return territories


def _read_tables(root: Path) -> Territories:

    def read(name: str):
        data = _table_path(root, name).read_bytes()
        return json.loads(gzip.decompress(data) if name.endswith(".gz") else data)

    regions = [Region(r["code"], r["nom"]) for r in read("regions.json")]
    departements = [Departement(d["code"], d["nom"], d["region"]) for d in read("departements.json")]
    region_of = {d.code: d.region for d in departements}
    cols = read("communes.json.gz")
    communes = [
        Commune(code, name, tuple(cps), dep, region_of[dep], pop, epci)
        for code, name, cps, dep, pop, epci in zip(
            cols["code"], cols["nom"], cols["cp"], cols["dep"], cols["pop"], cols["epci"], strict=True
        )
    ]
    epcis = [
        Epci(e["siren"], e["nom"], e["type"], e["pop"], e["pop_totale"], tuple(e["membres"]))
        for e in read("epci.json.gz")["epci"]
    ]
    former = read("anciennes.json.gz")
    # Tables just rebuilt, list not yet regenerated (`aiguillage territories common-words`): no name
    # is known to be an ordinary word, only grammar words are.
    listed = root / COMMON_NAMES_FILE
    common = [n for n in listed.read_text(encoding="utf-8").splitlines() if n and not n.startswith("#")] if listed.exists() else []
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8")) if (root / "meta.json").exists() else {}
    return Territories(
        communes, epcis, departements, regions, [tuple(x) for x in former["noms"]], former["codes"], meta, common
    )
