"""Judge notices: outdated premises the message relies on, and quoted programme names that do not exist."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from assistant.schema import Offer, OutdatedPremise
from assistant.offer_names import name_keys
from assistant.text import fold, literal, stem, words

QUOTED = re.compile(r"[«“\"]\s*([^«»“”\"]{3,80}?)\s*[»”\"]")


# Function words skipped when phrases are compared: « transfert de l'eau » is « transfert eau ».
GLUE = frozenset(
    "le la les l de des du d un une au aux a en et y il elle on nous vous ils elles t ce cet cette "
    "son sa ses notre nos votre vos leur leurs mon ma mes".split()
)
# Share of a claim phrase that must be said, as one run of its words in order, and how many words a
# distancing cue may stand from the premise's words within their clause (0: cues ignored). Both chosen
# on tests/data/premises.yaml and reported on tests/data/premises-heldout.yaml by `python -m evals.notices`.
CLAIM_COVERAGE = 1.0
CUE_REACH = 8
# Words that may come inside a subject said (« recensement gratuit des ponts » names the census).
SUBJECT_GAP = 1

# What a message says around a premise's words when it does not assert the premise (folded words;
# a cue that is itself part of a claim said, « n'existe plus », « non retenue », is that claim).
# Negation of the clause: « MaPrimeRénov' n'est pas suspendue », « ne le couvre pas ».
NEGATIONS = frozenset({"pas", "jamais", "aucun", "aucune", "aucuns", "aucunes", "ni"})
NE = frozenset({"ne", "n"})  # « plus » negates only after « ne » in its clause (« n'est plus gelée »)
# The subject set aside, said just before it: « à part MaPrimeRénov' », « hors OPAH », « sans transfert ».
EXCLUSIONS = (("a", "part"), ("sauf",), ("hors",), ("hormis",), ("excepte",), ("autre", "que"), ("autres", "que"),
              ("en", "dehors"), ("plutot", "que"), ("plutot", "qu"), ("au", "lieu"), ("sans",))
# The scheme said to be over or done (stems): « remplacée par FRR », « clos depuis 2021 », « la fin des
# ZRR », « a été lancé par le département », or its figure lower: « passé sous les 2 milliards ».
ENDED = frozenset({"remplace", "remplac", "supprim", "clos", "disparu", "disparus", "disparue", "repris", "ete"})
LOWER = frozenset({"sous", "moin", "baiss", "diminu", "reduit"})
# « fin » is a date when a number, a month or a period follows (« fin 2026 », « fin de l'année »).
DATE_AFTER = frozenset(
    "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre annee mois semaine".split()
)
# The premise's words only talked about (stems): « informer les familles sur MaPrimeRénov' » (but
# « présenter notre voie au fonds… » addresses the scheme: a subject after « à » is not talked about).
MENTIONS = frozenset({"inform", "expliqu", "present", "communiqu", "sensibilis", "rassur", "parl", "permanent"})
# The claim names a place beside what is asked about: « les maisons près de la salle des fêtes ».
PLACES = frozenset({"pres", "autour", "cote", "proche", "abords", "face", "devant", "derriere", "dessus", "voisin", "voisines", "voisins"})
# Where a clause ends: punctuation and the conjunctions that start another one.
CLAUSE_ENDS = frozenset(",;:?!.()") | frozenset({"puisque", "mais", "car", "donc", "alors"})
TOKENS = re.compile(r"[0-9a-z]+|[,;:?!.()]")


def phrase_terms(text: str) -> tuple[str, ...]:
    """A text as the sequence of its stemmed, accent-folded words, function words (GLUE) left out."""
    return tuple(stem(w) for w in words(fold(text)) if w not in GLUE)


def _runs(seq: tuple[str, ...], phrase: tuple[str, ...]) -> list[int]:
    """Start positions where `phrase` occurs as a run of `seq`."""
    n = len(phrase)
    return [i for i in range(len(seq) - n + 1) if seq[i:i + n] == phrase] if n else []


def _spans(seq: tuple[str, ...], phrase: tuple[str, ...], gap: int) -> list[tuple[int, int]]:
    """(start, end) of each place where `phrase` is said in `seq`, its words in order with at most
    `gap` other words between two of them."""
    spans = []
    for start in (i for i, term in enumerate(seq) if term == phrase[0]):
        end = start
        for term in phrase[1:]:
            end = next((j for j in range(end + 1, min(end + 2 + gap, len(seq))) if seq[j] == term), -1)
            if end < 0:
                break
        else:
            spans.append((start, end + 1))
    return spans


def coverage(seq: tuple[str, ...], phrase: tuple[str, ...]) -> float:
    """Share of `phrase` found in `seq` as its longest run of consecutive words (0 to 1)."""
    for n in range(len(phrase), 0, -1):
        if any(_runs(seq, phrase[i:i + n]) for i in range(len(phrase) - n + 1)):
            return n / len(phrase)
    return 0.0


def _claim_spans(seq: tuple[str, ...], phrase: tuple[str, ...], share: float) -> list[tuple[int, int, float]]:
    """(start, end, share said) of each run of `seq` that says at least `share` of `phrase`, longest first."""
    found = []
    for n in range(len(phrase), 0, -1):
        if n / len(phrase) < share:
            break
        found += [(s, s + n, n / len(phrase)) for i in range(len(phrase) - n + 1) for s in _runs(seq, phrase[i:i + n])]
    return found


class _Message:
    """A message as folded tokens (words and clause punctuation) and as phrase terms mapped to them."""

    def __init__(self, text: str):
        self.tokens = TOKENS.findall(fold(text.replace("’", "'")))
        kept = [(stem(t), i) for i, t in enumerate(self.tokens) if t[0].isalnum() and t not in GLUE]
        self.terms = tuple(t for t, _ in kept)
        self.at = [i for _, i in kept]  # token position of each term
        self.stems = [stem(t) for t in self.tokens]

    def tokens_of(self, span: tuple[int, int]) -> range:
        """Token positions covered by a span of terms."""
        return range(self.at[span[0]], self.at[span[1] - 1] + 1)

    def clause(self, position: int) -> range:
        """Token positions of the clause holding `position`."""
        start = next((i + 1 for i in range(position - 1, -1, -1) if self.tokens[i] in CLAUSE_ENDS), 0)
        end = next((i for i in range(position + 1, len(self.tokens)) if self.tokens[i] in CLAUSE_ENDS), len(self.tokens))
        return range(start, end)

    def distancing(self, subject: range, claim: range | None, claimed: set[int], reach: int) -> bool:
        """Whether a cue within `reach` tokens of the subject (or claim) said, in their clauses, shows the
        message denies, sets aside, declares ended or only talks about the premise (cues list above).
        Tokens in `claimed` (the claims said) are not cues."""
        if reach <= 0:
            return False
        said = [subject] + ([claim] if claim is not None else [])
        region = sorted(set().union(*(self.clause(r.start) for r in said)))
        near = [i for i in region if i not in claimed and not any(i in r for r in said)
                and min(min(abs(i - r.start), abs(i - r.stop + 1)) for r in said) <= reach]
        for i in near:
            word, root = self.tokens[i], self.stems[i]
            clause = self.clause(i)
            if word in NEGATIONS or (word == "plus" and any(self.tokens[j] in NE for j in range(clause.start, i))):
                return True
            if root in ENDED or root in LOWER or word in PLACES:
                return True
            if root in MENTIONS and self.tokens[subject.start - 1:subject.start] not in (["a"], ["au"], ["aux"]):
                return True
            if word == "fin" and not any(t.isdigit() or t in DATE_AFTER for t in self.tokens[i + 1:i + 4]):
                return True
            # « à part X », « plutôt qu'un marché public »; « sans » sets aside the subject only (« sans
            # appel d'offres ? » asks whether the claim holds).
            for e in EXCLUSIONS:
                if tuple(self.tokens[i:i + len(e)]) == e and any(
                    i + len(e) <= r.start for r in (said if e != ("sans",) else [subject])
                ):
                    return True
        return False


@dataclass(frozen=True)
class _Premise:
    offer: Offer
    premise: OutdatedPremise
    subjects: tuple[tuple[str, ...], ...]
    claims: tuple[tuple[str, ...], ...]
    longer: tuple[tuple[str, ...], ...]  # other offers' names holding a subject (« Programme national Ponts – Travaux »)
    firsts: frozenset[str]  # the first term of each subject: a message without any of them cannot name it


class PremiseIndex:
    """Each offer's outdated premises, as the phrases that name their subject and say their claim."""

    def __init__(self, offers: Mapping[str, Offer], claim_coverage: float = CLAIM_COVERAGE, cue_reach: int = CUE_REACH):
        phrases = {o.id: {phrase_terms(k) for n in [o.title, *o.aliases] for k in name_keys(n)} for o in offers.values()}
        self._build([o for o in offers.values() if o.outdated_premises], phrases, claim_coverage, cue_reach)

    @classmethod
    def from_phrases(cls, premised: Iterable[Offer], phrases: Mapping[str, Iterable[tuple[str, ...]]],
                     claim_coverage: float = CLAIM_COVERAGE, cue_reach: int = CUE_REACH) -> PremiseIndex:
        """The same index from the offers that have outdated premises and every offer's names as
        phrases (id -> phrase_terms of each name_keys of its title and aliases; assistant.derived keeps
        them with the index generation): built without validating the other cards."""
        index = cls.__new__(cls)
        index._build(list(premised), phrases, claim_coverage, cue_reach)
        return index

    def _build(self, premised: list[Offer], phrases: Mapping[str, Iterable[tuple[str, ...]]], claim_coverage: float,
               cue_reach: int) -> None:
        self.claim_coverage = claim_coverage
        self.cue_reach = cue_reach
        # Every offer's names as phrases, found by their words: a subject is looked up among the names
        # holding its first word, not against every name of the catalogue.
        by_term: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
        for offer_id, terms in phrases.items():
            for name in terms:
                for term in name:
                    by_term.setdefault(term, set()).add((offer_id, name))
        self.premises = []
        for o in premised:
            for p in o.outdated_premises:
                subjects = tuple(t for t in map(phrase_terms, p.subject) if t)
                longer = tuple(sorted({
                    name for s in subjects for other, name in by_term.get(s[0], ())
                    if other != o.id and name not in subjects and len(name) > len(s) and _runs(name, s)
                }))
                claims = tuple(t for t in map(phrase_terms, p.claims) if t)
                self.premises.append(_Premise(o, p, subjects, claims, longer, frozenset(t[0] for t in subjects)))

    def outdated_premises(self, message: str) -> list[tuple[Offer, OutdatedPremise]]:
        """The outdated premise the message asserts, if any: [(offer, premise)] or [].

        A premise is asserted when the message names its subject (one of `subject`, its words in order,
        SUBJECT_GAP other words at most between two of them, not inside a longer name of another offer:
        « Programme national Ponts Travaux » does not name the census programme) and says its claim:
        CLAIM_COVERAGE of one of `claims`, as a run of words in order (« fin des OPAH », not « OPAH-RU …
        fin 2026 »); a premise without claims is asserted by its subject alone (a name that no longer
        exists: ZRR, SARE, « Habiter facile »). And nothing around them, within CUE_REACH words in their
        clause, shows the message denies the premise (« n'est pas suspendue »), sets the subject aside
        (« à part MaPrimeRénov' »), says the scheme is over (« les ZRR, remplacées par FRR »), only talks
        about it (« informer les familles sur… ») or names the claim as a place (« près de l'école »).
        Several cards may record the same belief (the water transfer): the best match is corrected
        once. The settings are calibrated by `python -m evals.notices`.
        """
        said = _Message(message)
        seq = said.terms
        present = set(seq)
        found = []
        for entry in self.premises:
            if entry.firsts.isdisjoint(present):  # a subject is said from its first term on
                continue
            spans = [span for s in entry.subjects for span in _spans(seq, s, SUBJECT_GAP)]
            if not spans:  # most premises: their subject is not said, no longer name to look for
                continue
            hidden = {i for name in entry.longer for start in _runs(seq, name) for i in range(start, start + len(name))}
            subjects = [span for span in spans if not set(range(*span)) <= hidden]
            if not subjects:
                continue
            if not entry.claims:
                if any(not said.distancing(said.tokens_of(s), None, set(), self.cue_reach) for s in subjects):
                    found.append((1.0, 0, entry))
                continue
            claims = [(span, len(c)) for c in entry.claims for *span, _ in _claim_spans(seq, c, self.claim_coverage)]
            claimed = {i for span, _ in claims for i in said.tokens_of(tuple(span))}
            asserted = [
                ((span[1] - span[0]) / n, n) for span, n in claims for s in subjects
                if not said.distancing(said.tokens_of(s), said.tokens_of(tuple(span)), claimed, self.cue_reach)
            ]
            if asserted:
                share, n = max(asserted, key=lambda a: (a[0], a[1]))
                found.append((share, round(share * n), entry))
        # The claim said at greater length wins (« plus d'OPAH » over « OPAH »).
        found.sort(key=lambda f: (-f[1], -f[0]))
        return [(entry.offer, entry.premise) for *_, entry in found[:1]]


def programme_names(names: Iterable[list[str]]) -> list[str]:
    """The folded names (titles and aliases of 4 characters or more) a quoted name is compared with;
    built once per index generation. names: each offer's [title, *aliases]."""
    return [fold(n) for offer_names in names for n in offer_names if len(n) >= 4]


def unknown_programmes(message: str, known_names: list[str]) -> str | None:
    """A quoted programme name that matches no card (partial ratio under 90 with every name of
    programme_names) is said to be unknown, never taken as real."""
    unknown = []
    for name in QUOTED.findall(message):
        key = fold(name.strip())
        if len(key) < 4:
            continue
        if process.extractOne(key, known_names, scorer=fuzz.partial_ratio, score_cutoff=90) is None:
            unknown.append(name.strip())
    if not unknown:
        return None
    names = ", ".join(f"« {literal(n)} »" for n in unknown)
    return (
        f"Je ne trouve aucun dispositif nommé {names} parmi les offres vérifiées de l'ANCT, de ses partenaires "
        "et de l'État : il n'existe peut-être pas, ou pas sous ce nom. Fiez-vous aux pages officielles ; voici "
        "les offres réelles qui s'en rapprochent."
    )
