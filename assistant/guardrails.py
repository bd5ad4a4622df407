"""Scope and injection guardrails, decided before retrieval so that no offer leaks into a refusal.

Rules are explicit patterns, not a model: they can be read, tested and extended by an agent.
Each out-of-scope rule names the right door for the asker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.text import fold

SERVICE_PUBLIC = "service-public.fr (https://www.service-public.fr), le site officiel de l'administration pour les démarches personnelles"
PREFECTURE = "la préfecture de votre département, dont le préfet est délégué territorial de l'ANCT"


@dataclass(frozen=True)
class ScopeRule:
    kind: str
    pattern: re.Pattern
    door: str


def _rule(kind: str, words: str, door: str) -> ScopeRule:
    return ScopeRule(kind, re.compile(words), door)


# Patterns match the accent-folded, lowercased message.
OUT_OF_SCOPE = [
    _rule("impots-personnels", r"\b(mes|mon|ma|nos) (impots?|declaration de revenus|taxe fonciere|avis d'imposition)\b|\bimpots? sur le revenu\b|\bdeclaration de revenus\b", SERVICE_PUBLIC),
    _rule("voisinage", r"\b(voisin|voisine|voisins|voisinage)\b", "un conciliateur de justice (gratuit) ; la démarche est décrite sur " + SERVICE_PUBLIC),
    _rule("indemnites-elus", r"\bindemnites? (de fonction|des elus|d'elu|du maire)|\bmon indemnite\b|\b(salaire|remuneration) (du|de) maire\b", "l'association départementale des maires ou la préfecture (contrôle de légalité)"),
    # Leisure only when asked for oneself: "restaurant scolaire" or "centre de vacances" are projects.
    _rule("loisirs", r"\b(bon|meilleur|quel|un) restaurant\b(?! (scolaire|municipal|administratif|collectif|d'entreprise|inter))|\brecette de\b|\bmeteo\b|\b(quel|un bon|regarder un) film\b|\bhoroscope\b|\bresultats? du match\b|\b(mes|nos|partir en) vacances\b", SERVICE_PUBLIC),
    _rule("demarches-personnelles", r"\b(mon|ma|mes) (passeport|carte d'identite|permis de conduire|carte grise|retraite|allocations?|caf|chomage|arret maladie)\b", SERVICE_PUBLIC),
    _rule("emploi-personnel", r"\b(je cherche|trouver) (un|du) (emploi|travail|stage)\b|\bmon cv\b", "France Travail (https://www.francetravail.fr)"),
    _rule("elections", r"\belections? (municipales|legislatives|presidentielles?|europeennes|regionales|departementales)\b|\bresultats? (du|des|de l') ?(vote|scrutin|election)", "le site du ministère de l'Intérieur (résultats des élections) ou la préfecture"),
    _rule("assurance", r"\bassurances? (habitation|auto|automobile|maison|vie|sante|emprunteur)\b|\bmutuelle\b", SERVICE_PUBLIC),
    _rule("agriculture-exploitant", r"\baides? pac\b|\bpolitique agricole commune\b|\b(mon|notre) exploitation agricole\b|\bjeune agriculteur\b|\bdotation jeune agriculteur\b", "la DDT(M) de votre département ou la chambre d'agriculture"),
    _rule("ressources-humaines", r"\b(salaire|remuneration|grille indiciaire|avancement|carriere|primes?) (de la |du |d'une? |des )?(secretaire|agent|agents|employee?s?|fonctionnaires?|personnel)\b", "le centre de gestion de la fonction publique territoriale (CDG) de votre département"),
    _rule("vie-personnelle", r"\b(ma|mon|mes) (maison|appartement|fils|fille|mere|pere|enfants?|femme|mari|voiture|revenus?|salaire|propre logement|declaration)\b|\bimpots\.gouv\b", SERVICE_PUBLIC),
    _rule("litige-prive", r"\bmon (proprietaire|locataire|employeur)\b|\bmon divorce\b|\bheritage\b", SERVICE_PUBLIC),
]

INJECTION = re.compile(
    r"ignore[rz]? (toutes |tes |les |vos )*(instructions|consignes|regles)|oublie[rz]? (tes|les|vos) (instructions|consignes|regles)"
    r"|system prompt|prompt systeme|(revele|affiche|montre|donne|repete)[rz]?(-moi)? (ton|tes|le|les|votre|vos) (prompt|instructions|consignes)"
    r"|tu es (maintenant|desormais)|a partir de maintenant,? tu|mode (developpeur|dan)\b|jailbreak|\bdan\b mode"
    r"|repete[rz]? (mot pour mot|tout|le texte)|texte (qui se trouve )?au-dessus|tes instructions (initiales|cachees)"
    r"|sans (aucune )?(restriction|limite|filtre|censure)s?\b|tu n'as (plus|pas) de (regles|limites|restrictions)"
)
_DOCUMENTS = (
    r"(attestation|certificat|lettre d'engagement|accord de financement|promesse de subvention"
    r"|notification de subvention|arrete attributif|courrier officiel|convention signee"
    r"|lettre (de promesse|d'accord|promettant|garantissant))"
)
_MAKE = r"(redige|ecris|genere|fais|fabrique|signe|produis|delivre|rediger|ecrire|generer|faire|fabriquer|signer|produire|delivrer)"
FAKE_DOCUMENT = re.compile(
    rf"\b{_MAKE}\b.*\b{_DOCUMENTS}|\b{_DOCUMENTS}\b.*\b{_MAKE}\b"
    r"|\bgarantir? (par ecrit|noir sur blanc)|\b(promettant|garantissant|certifiant) (que |une |un |l')?.{0,40}(subvention|financement|\d+ ?%)"
)
INVENT = re.compile(r"\b(invente|imagine|cree|creer|inventer|imaginer)[rz]?\b.*\b(programme|dispositif|aide|subvention|offre)\b")


@dataclass(frozen=True)
class GuardDecision:
    kind: str  # "ok", "out_of_scope", "injection", "fake_document", "invent"
    door: str | None = None
    rule: str | None = None

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
    for rule in OUT_OF_SCOPE:
        if rule.pattern.search(text):
            return GuardDecision("out_of_scope", rule.door, rule.kind)
    return GuardDecision("ok")


def refusal_text(decision: GuardDecision) -> str:
    if decision.kind == "out_of_scope":
        return (
            "Cette question sort de mon champ : j'oriente les collectivités (communes, intercommunalités, "
            "départements) vers les offres d'ingénierie et de financement de l'ANCT et de ses partenaires "
            f"(ADEME, Cerema, ANRU, Anah, Banque des Territoires).\n\nPour votre demande, adressez-vous plutôt à {decision.door}."
        )
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
