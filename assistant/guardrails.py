"""Attack guardrails, decided before retrieval so that no offer leaks into a refusal.

Only narrow, high-precision patterns stay here: injected instructions, requests for fake documents,
requests to invent a scheme. Each has tests of in-scope sentences sharing its words
(tests/test_guardrails.py). Whether a question is in Aiguillage's field at all is the scope model's
decision (assistant/scope/), turned into a `GuardDecision` by `scope_decision`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.patterns import screened
from assistant.text import fold

PREFECTURE = "la préfecture de votre département, dont le préfet est délégué territorial de l'ANCT"
WHAT_WE_DO = (
    "Aiguillage oriente les collectivités (communes, intercommunalités, départements) vers les offres "
    "d'ingénierie et de financement de l'ANCT, de ses partenaires (ADEME, Cerema, ANRU, Anah, Banque des "
    "Territoires) et de l'État pour leurs projets."
)

# Patterns match the accent-folded, lowercased message.
INJECTION = screened(
    r"ignore[rz]? (toutes |tes |les |vos )*(instructions|consignes|regles)|oublie[rz]? (tes|les|vos) (instructions|consignes|regles)"
    r"|system prompt|prompt systeme|(revele|affiche|montre|donne|repete)[rz]?(-moi)? (ton|tes|le|les|votre|vos) (prompt|instructions|consignes)"
    r"|tu es (maintenant|desormais)|a partir de maintenant,? tu|mode (developpeur|dan)\b|jailbreak|\bdan\b mode"
    r"|repete[rz]? (mot pour mot|tout|le texte)|texte (qui se trouve )?au-dessus|tes instructions (initiales|cachees)"
    r"|\b(assistant|ia|reponds|reponses?|parle|mode) sans (aucune )?(restriction|limite|filtre|censure)s?\b|tu n'as (plus|pas) de (regles|limites|restrictions)"
)
_DOCUMENTS = (
    r"(attestation|certificat|lettre d'engagement|accord de financement|promesse de subvention"
    r"|notification de subvention|arrete attributif|courrier officiel|convention signee"
    r"|lettre (de promesse|d'accord|promettant|garantissant))"
)
# Asked of the assistant: an imperative (« rédige-moi », not « je rédige ») or « peux-tu rédiger ».
# Third persons (« le préfet signe l'arrêté attributif ») and « faut-il faire une attestation » are questions.
_MAKE = (
    r"((?<!je )(?<!j')(?<!on )\b(redige|ecris|genere|fais|fabrique|produis)(-moi|-nous|-en| moi| nous)?\b"
    r"|\b(peux|pourrais|pouvez|pourriez)[- ](tu|vous) (me |nous |m')?(rediger|ecrire|generer|faire|fabriquer|produire|signer|delivrer)\b)"
)
FAKE_DOCUMENT = screened(
    rf"{_MAKE}.*\b{_DOCUMENTS}"
    r"|\bgarantir? (par ecrit|noir sur blanc)|\b(promettant|garantissant|certifiant) (que |une |un |l')?.{0,40}(subvention|financement|\d+ ?%)"
)
# « Invente un dispositif », « peux-tu imaginer une aide » — not « on imagine un dispositif d'aide aux commerces ».
INVENT = screened(
    r"((?<!je )(?<!j')(?<!on )(?<!nous )\b(invente|imagine)z?(-moi|-nous| moi| nous)?\b|\b(peux|pourrais|pouvez|pourriez)[- ](tu|vous) (m'|me |nous )?(inventer|imaginer)\b)"
    r".*\b(programme|dispositif|aide|subvention|offre)\b"
)


@dataclass(frozen=True)
class GuardDecision:
    kind: str  # "ok", "out_of_scope", "injection", "fake_document", "invent"
    door: str | None = None  # the body named in the refusal (French)
    rule: str | None = None  # the pattern, or "scope:<kind>:<door id>" for the scope model
    score: float | None = None  # the scope model's P(out of scope), when it decided
    door_id: str | None = None  # the scope model's door (a key of assistant.scope.doors.DOORS), when it refused

    @property
    def refuses(self) -> bool:
        return self.kind != "ok"


def check_message(message: str) -> GuardDecision:
    text = fold(message).replace("’", "'")
    if FAKE_DOCUMENT.search(text):
        return GuardDecision("fake_document", PREFECTURE, "fake_document")
    if INVENT.search(text):
        return GuardDecision("invent", None, "invent")
    if INJECTION.search(text):
        return GuardDecision("injection", None, "injection")
    return GuardDecision("ok")


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def request_besides_invention(message: str, min_words: int = 5) -> str | None:
    """The sentences of a message that do not ask to invent (« Il me faut une aide pour les lavoirs.
    Si rien n'existe, invente un dispositif » -> « Il me faut une aide pour les lavoirs. »), when they
    make a request of their own (min_words words or more); None otherwise."""
    kept = [s for s in _SENTENCE.split(message.strip()) if not INVENT.search(fold(s).replace("’", "'"))]
    rest = " ".join(kept)
    return rest if len(rest.split()) >= min_words else None


def scope_decision(verdict) -> GuardDecision:
    """The scope model's verdict (assistant.scope.ScopeVerdict) as a guard decision: out of scope with
    its door and kind in `rule` (« scope:particulier:particulier », « scope:collectivite-autre:cdg »)."""
    if not verdict.refuses:
        return GuardDecision("ok", score=verdict.out_probability)
    return GuardDecision("out_of_scope", verdict.door_text, f"scope:{verdict.kind}:{verdict.door}", verdict.out_probability,
                         verdict.door)


# The refusal's sentence that names its door, up to the body's name: what the evaluation counts as a
# refusal with a door (evals/scope_eval.py), « à » contracted as `to` does.
ADDRESS_INSTEAD = "adressez-vous plutôt"
_CONTRACTED = (("le ", "au "), ("les ", "aux "))
DOOR_SENTENCE = re.compile(rf"{ADDRESS_INSTEAD} (?:à|{'|'.join(c.strip() for _, c in _CONTRACTED)}) ")


def to(body: str) -> str:
    """« à » before a body's name, contracted as French requires: « au centre de gestion », « aux
    services », « à la préfecture », « à service-public.fr »."""
    for article, contracted in _CONTRACTED:
        if body.startswith(article):
            return contracted + body[len(article):]
    return "à " + body


def refusal_text(decision: GuardDecision) -> str:
    if decision.kind == "out_of_scope":
        if (decision.rule or "").startswith("scope:collectivite-autre"):
            why = "Votre question concerne bien une collectivité, mais pas le financement ni l'ingénierie d'un projet : ce n'est pas mon champ."
        else:
            why = "Cette question porte sur une affaire personnelle ou sort du champ des projets des collectivités : ce n'est pas mon champ."
        return f"{why} {WHAT_WE_DO}\n\nPour votre demande, {ADDRESS_INSTEAD} {to(decision.door)}."
    if decision.kind == "fake_document":
        return (
            "Je ne peux pas rédiger d'attestation, de certificat ou d'engagement de financement : seuls "
            "l'organisme financeur ou la préfecture peuvent en délivrer. Je peux en revanche vous indiquer "
            "l'offre adaptée à votre projet et la bonne porte d'entrée."
        )
    if decision.kind == "invent":
        return (
            "Je ne présente que des dispositifs qui existent et figurent dans ma base d'offres vérifiées ; "
            "je ne peux pas en inventer. Décrivez-moi votre projet et je vous indiquerai les offres réelles qui y répondent."
        )
    return (
        "Je ne peux pas modifier mes consignes ni les divulguer. Mon rôle reste le même : orienter votre "
        "collectivité vers les offres de l'ANCT et de ses partenaires. Quel est votre projet ?"
    )
