"""The assistant: one conversation turn from message to referrals and answer.

Ranking of candidate offers (explicit, so agents can explain it; kept in each hit's breakdown):
  final score = fused RRF score (hybrid retrieval)
              + NAMED_BONUS   if the question names the offer by its title (ALIAS_BONUS: by an alias)
              + THEME_BONUS   if the offer carries a theme detected in the question
              + NEED_BONUS    if its support type fits the need said (ingénierie / financement)
              + TARGET_BONUS  if it is reserved to a population or territory the asker is known to fit
              + INFORMATION_PENALTY (negative) for tools, labels, networks and trainings, unless a tool is asked
Offers the asker is known to be ineligible for are never recommended; they are listed apart.
Closed or historic offers are kept only when the question names them (to say they are closed).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from sqlalchemy import select

from assistant.answer import (
    AnswerContext,
    AnswerGenerator,
    Contact,
    GeneratedAnswer,
    GroundedGenerator,
    Referral,
    stream_answer,
)
from assistant.config import Settings
from assistant.contacts import ContactDirectory
from assistant.eligibility import Verdict, evaluate
from assistant.embeddings import build_embeddings
from assistant.generators import build_generator
from assistant.guardrails import GuardDecision, check_message, refusal_text
from assistant.profile import Profile, apply_territory, extract_profile
from assistant.retrieval import HybridRetriever, IndexHandle, OfferHit, SearchFilters
from assistant.schema import Offer, OutdatedPremise, PartnerCard
from assistant.store import Conversation, Database, Turn, utcnow
from assistant.territory import Territories
from assistant.text import analyze, fold, words
from ingest.corpus import load_corpus, load_themes

NAMED_BONUS = 0.02
ALIAS_BONUS = 0.012
THEME_BONUS = 0.008
NEED_BONUS = 0.004
TARGET_BONUS = 0.003
NEED_SUPPORTS = {
    "ingenierie": {"technical_engineering", "financial_engineering", "legal_engineering"},
    "financement": {"grant", "loan", "recoverable_advance", "tax_relief"},
    "les-deux": {"technical_engineering", "financial_engineering", "grant", "loan"},
    "outil": {"tool"},
}
INFORMATION_ONLY = {"tool", "other", "network", "training", "label"}
INFORMATION_PENALTY = -0.004
CANDIDATES = 12
SEARCH_DEPTH = 30  # offers fused before relevance gating; themed offers further down can still surface
MIN_DENSE_SIMILARITY = 0.30
MIN_BM25_SCORE = 3.0
MAX_CLARIFICATIONS_IN_ROW = 2
FOLLOW_UP_MAX_WORDS = 12
COST_FOLLOW_UP = re.compile(r"gratuit|combien|cout|payant|prix|tarif|ca coute|rembourser")
CONTACT_FOLLOW_UP = re.compile(r"qui (je |dois-je |on )?contact|a qui|interlocuteur|joindre|qui appeler|contacter qui|qui je vois")
POPULATION_OPTIONS = [
    ("Moins de 3 500 habitants", "Nous avons moins de 3 500 habitants"),
    ("De 3 500 à 9 999 habitants", "Nous avons entre 3 500 et 9 999 habitants"),
    ("De 10 000 à 19 999 habitants", "Nous avons entre 10 000 et 19 999 habitants"),
    ("20 000 habitants ou plus", "Nous avons plus de 20 000 habitants"),
]
WHO_OPTIONS = [
    ("Commune de moins de 3 500 habitants", "Nous sommes une commune de moins de 3 500 habitants"),
    ("Commune de 3 500 à 19 999 habitants", "Nous sommes une commune de 10 000 habitants environ"),
    ("Commune de 20 000 habitants ou plus", "Nous sommes une commune de plus de 20 000 habitants"),
    ("Intercommunalité", "Je représente une intercommunalité (EPCI)"),
    ("Département", "Je représente un conseil départemental"),
    ("Région", "Je représente un conseil régional"),
]
ELIGIBILITY_QUESTION = re.compile(
    r"eligib|beneficier|gratuit|combien|cout|payant|a droit|avons droit|quel programme|dans quel|pour nous\s*\?"
)
VAGUE_MAX_WORDS = 10
QUOTED = re.compile(r"[«“\"]\s*([^«»“”\"]{3,80}?)\s*[»”\"]")
LOCAL_CONTACTS = {"prefecture", "anah-delegation-locale"}  # départemental offices


@dataclass
class Clarification:
    key: str
    question: str
    options: list[tuple[str, str]]


@dataclass
class TurnResult:
    conversation_id: str
    message_id: int
    kind: str  # answer, clarification, refusal, no_match
    answer: GeneratedAnswer | None  # None until generated (chat) or streamed (chat_stream)
    referrals: list[Referral]
    ineligible: list[Referral]
    profile: Profile
    clarification: Clarification | None = None
    corrections: list[tuple[Offer, OutdatedPremise]] = field(default_factory=list)
    candidates: list[OfferHit] = field(default_factory=list)
    seconds: float = 0.0
    context: AnswerContext | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # per candidate offer id


class Assistant:
    def __init__(
        self,
        settings: Settings,
        embeddings=None,
        generator: AnswerGenerator | None = None,
        database: Database | None = None,
    ):
        self.settings = settings
        self.embeddings = embeddings or build_embeddings(settings)
        self.handle = IndexHandle(settings)
        self.retriever = HybridRetriever(self.handle, self.embeddings, settings)
        self.themes = load_themes(settings.corpus_dir)
        self.theme_labels = {t.id: t.label for t in self.themes.themes}
        self.territories = Territories.load(settings.corpus_dir)
        self.contacts = ContactDirectory.load(settings.corpus_dir)
        self.generator = generator or build_generator(settings)
        self.grounded = GroundedGenerator()
        if database is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            database = Database(settings.sqlalchemy_url)
            database.create_schema()
        self.db = database
        self._signature_stamp: tuple | None = None
        self._signature_cache = ""
        self._premises: tuple[str, tuple[set[str], list]] | None = None

    # ---- reading the corpus -------------------------------------------------------------
    @property
    def offers(self) -> dict[str, Offer]:
        return self.handle.current().offers

    def partners(self) -> list[PartnerCard]:
        return sorted(load_corpus(self.settings.corpus_dir).partners.values(), key=lambda p: p.id)

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 10) -> list[OfferHit]:
        return self.retriever.search(query, filters, limit)

    def readiness(self) -> dict:
        """Ready when the index loads and was built from the corpus as it is on disk now."""
        try:
            index = self.handle.current()
        except Exception as exc:  # no manifest, lost collection, unreadable snapshot
            return {"ready": False, "reason": str(exc)}
        on_disk = self._corpus_signature()
        built = index.manifest["corpus_signature"]
        if on_disk != built:
            return {"ready": False, "reason": "le corpus a changé depuis la dernière indexation", "index": built, "corpus": on_disk}
        return {"ready": True, "collection": index.collection_name, "offers": len(index.offers), "corpus": built}

    def _corpus_signature(self) -> str:
        files = sorted((self.settings.corpus_dir / "offers").glob("*/*.yaml"))
        stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
        if stamp != self._signature_stamp:
            self._signature_cache = load_corpus(self.settings.corpus_dir).signature()
            self._signature_stamp = stamp
        return self._signature_cache

    def profile_for(self, profile: Profile | None, insee: str | None) -> Profile | None:
        """The caller's known profile, completed from the territory tables when an INSEE code is given."""
        if insee is None:
            return profile
        base = profile or Profile()
        from_code = Profile()
        apply_territory(from_code, self.territories.resolve(insee))
        return from_code.merged_with(base)

    # ---- one conversation turn ----------------------------------------------------------
    def chat(self, message: str, conversation_id: str | None = None, profile: Profile | None = None) -> TurnResult:
        started = time.perf_counter()
        result, state = self._prepare(message, conversation_id, profile)
        if result.answer is None:
            result.answer = self._generate(result.context)
        self._persist(message, result, state, started)
        return result

    def chat_stream(
        self, message: str, conversation_id: str | None = None, profile: Profile | None = None
    ) -> Iterator[tuple[str, object]]:
        """Events for streaming clients: ("start", TurnResult) with the referrals, ("delta", text)…,
        then ("done", TurnResult) whose answer is the final text (it may replace the deltas when a
        generator falls back to the grounded answer)."""
        started = time.perf_counter()
        result, state = self._prepare(message, conversation_id, profile)
        yield "start", result
        if result.answer is None:
            generator = self.generator if result.context.referrals else self.grounded
            for piece in stream_answer(generator, result.context):
                if isinstance(piece, GeneratedAnswer):
                    result.answer = piece
                else:
                    yield "delta", piece
        else:
            yield "delta", result.answer.text
        self._persist(message, result, state, started)
        yield "done", result

    def _prepare(self, message: str, conversation_id: str | None, profile: Profile | None) -> tuple[TurnResult, dict]:
        with self.db.session() as session:
            conversation = session.get(Conversation, conversation_id) if conversation_id else None
            state = dict(conversation.state or {}) if conversation else {}
            known = Profile.model_validate(conversation.profile or {}) if conversation else Profile()
            turns = len(conversation.turns) if conversation else 0
        if profile is not None:
            known = known.merged_with(profile)
        result = self._turn(message, conversation_id or str(uuid.uuid4()), known, state)
        result.message_id = turns + 1
        return result, state

    def _persist(self, message: str, result: TurnResult, state: dict, started: float) -> None:
        result.seconds = time.perf_counter() - started
        with self.db.session() as session:
            conversation = session.get(Conversation, result.conversation_id)
            if conversation is None:
                conversation = Conversation(id=result.conversation_id)
                session.add(conversation)
            conversation.profile = result.profile.model_dump()
            conversation.state = state
            conversation.updated_at = utcnow()
            conversation.departement_code = result.profile.departement_code
            conversation.region_code = result.profile.region_code
            session.add(
                Turn(
                    conversation_id=conversation.id,
                    number=result.message_id,
                    message=message,
                    answer=result.answer.text,
                    kind=result.kind,
                    generator=result.answer.generator,
                    referrals=[referral_payload(r) for r in result.referrals],
                    retrieved=[candidate_payload(h, result.verdicts[h.offer.id]) for h in result.candidates],
                    profile=result.profile.model_dump(),
                    themes=result.profile.themes,
                    usage=result.answer.usage,
                    clarification=clarification_payload(result.clarification),
                )
            )

    def history(self, conversation_id: str) -> list[tuple[str, str]]:
        with self.db.session() as session:
            turns = session.scalars(select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.number))
            return [item for t in turns for item in (("user", t.message), ("assistant", t.answer))]

    def _turn(self, message: str, conversation_id: str, known: Profile, state: dict) -> TurnResult:
        decision = check_message(message)
        said = extract_profile(message, self.themes, self.territories)
        profile = known.merged_with(said)
        # An injection inside a real project question is ignored; an injection alone is refused.
        if decision.refuses and (decision.kind != "injection" or not said.themes):
            state["clarifications_in_row"] = 0
            return self._refusal(conversation_id, decision, profile)

        query, focus = self._query_for(message, said, state)
        history = self.history(conversation_id)
        rewrite = getattr(self.generator, "rewrite_follow_up", None)
        if rewrite is not None and history:
            # An LLM, when configured, turns a follow-up into a standalone search query (time-boxed).
            rewritten = rewrite(message, history)
            if rewritten.rewritten:
                query = rewritten.text
        if not said.themes and state.get("themes"):
            profile.themes = state["themes"]
        state["last_query"], state["themes"] = query, profile.themes
        corrections = self._outdated_premises(message)
        ranked, verdicts = self._candidates(query, profile, message)
        recommended = [h for h in ranked if verdicts[h.offer.id].status != "ineligible"][: self.settings.max_referrals]
        ineligible = [h for h in ranked[: self.settings.max_referrals + 2] if verdicts[h.offer.id].status == "ineligible"]

        clarification = None if corrections else self._clarification(message, profile, recommended, state)
        if clarification is not None:
            state["clarifications_in_row"] = state.get("clarifications_in_row", 0) + 1
            state.setdefault("asked", []).append(clarification.key)
            state["pending_query"] = query
            answer = GeneratedAnswer(clarification.question, "grounded")
            return TurnResult(conversation_id, 0, "clarification", answer, [], [], profile, clarification,
                              candidates=ranked, verdicts=verdicts)
        state["clarifications_in_row"] = 0
        state.pop("pending_query", None)

        referrals = [self._referral(h, verdicts[h.offer.id], profile) for h in recommended]
        excluded = [self._referral(h, verdicts[h.offer.id], profile) for h in ineligible]
        preface = self._unknown_programmes(message)
        if decision.kind == "injection":
            preface = _join(
                "Je ne tiens pas compte des instructions contenues dans votre message ; voici ce que je peux vous dire sur votre projet.",
                preface,
            )
        context = AnswerContext(
            question=message,
            profile=profile,
            referrals=referrals,
            ineligible=excluded,
            corrections=corrections,
            preface=_join(preface, self._focus_text(focus, referrals)),
            concise=bool(focus) and query != message,
            history=history,
            prefecture=self._contact(profile),
        )
        kind = "answer" if referrals else "no_match"
        return TurnResult(conversation_id, 0, kind, None, referrals, excluded, profile, None, corrections, ranked,
                          context=context, verdicts=verdicts)

    def _generate(self, context: AnswerContext) -> GeneratedAnswer:
        if self.generator is self.grounded or not context.referrals:
            return self.grounded.generate(context)
        return self.generator.generate(context)

    # ---- steps ---------------------------------------------------------------------------
    def _refusal(self, conversation_id: str, decision: GuardDecision, profile: Profile) -> TurnResult:
        return TurnResult(conversation_id, 0, "refusal", GeneratedAnswer(refusal_text(decision), "grounded"), [], [], profile)

    def _query_for(self, message: str, said: Profile, state: dict) -> tuple[str, str | None]:
        """Standalone retrieval query: a short follow-up without a topic of its own reuses the last one."""
        folded = fold(message).replace("’", "'")
        focus = "cost" if COST_FOLLOW_UP.search(folded) else "contact" if CONTACT_FOLLOW_UP.search(folded) else None
        previous = state.get("pending_query") or state.get("last_query")
        if previous and not said.themes and len(words(message)) <= FOLLOW_UP_MAX_WORDS:
            return f"{previous} {message}", focus
        return message, focus

    def _premise_table(self, collection: str) -> tuple[set[str], list]:
        """Per index generation: active offer names, and each premise with its keywords' stems."""
        if self._premises is not None and self._premises[0] == collection:
            return self._premises[1]
        offers = self.handle.current().offers.values()
        active = {fold(n) for o in offers if o.status == "active" for n in [o.title, *o.aliases]}
        premises = [
            (o, p, [(k, set(analyze(k))) for k in p.keywords]) for o in offers for p in o.outdated_premises
        ]
        self._premises = (collection, (active, premises))
        return active, premises

    def _outdated_premises(self, message: str) -> list[tuple[Offer, OutdatedPremise]]:
        """Premises the corpus marks as outdated, spotted by their keywords.

        Raised when two of its keywords are present, or one keyword of several words plus another
        keyword word (three words in all); an acronym keyword that names no active offer (ZRR,
        SARE…) is enough on its own. A lone common word ("2026") never is.
        """
        stems = set(analyze(message))
        active_names, premises = self._premise_table(self.handle.current().collection_name)
        found = []
        for offer, premise, keywords in premises:
            anchored = [(k, ks) for k, ks in keywords if ks and ks <= stems]
            if not anchored:
                continue
            matched = stems & set().union(*(ks for _, ks in keywords))
            phrase = any(len(ks) >= 2 for _, ks in anchored) and len(matched) >= 3
            lone_acronym = any(k.isupper() and len(k) <= 6 and fold(k) not in active_names for k, _ in anchored)
            if len(anchored) >= 2 or phrase or lone_acronym:
                found.append((len(anchored), len(matched), offer, premise))
        # Several cards may record the same belief (the water transfer): correct it once.
        return [(offer, premise) for *_, offer, premise in sorted(found, key=lambda f: (-f[0], -f[1]))[:1]]

    def _unknown_programmes(self, message: str) -> str | None:
        """A quoted programme name that matches no card is said to be unknown, never taken as real."""
        unknown = []
        for name in QUOTED.findall(message):
            key = fold(name.strip())
            if len(key) < 4:
                continue
            known = any(
                fuzz.partial_ratio(key, fold(n)) >= 90
                for offer in self.offers.values()
                for n in [offer.title, *offer.aliases]
                if len(n) >= 4
            )
            if not known:
                unknown.append(name.strip())
        if not unknown:
            return None
        names = ", ".join(f"« {n} »" for n in unknown)
        return (
            f"Je ne trouve aucun dispositif nommé {names} parmi les offres vérifiées de l'ANCT, de ses partenaires "
            "et de l'État : il n'existe peut-être pas, ou pas sous ce nom. Fiez-vous aux pages officielles ; voici "
            "les offres réelles qui s'en rapprochent."
        )

    @staticmethod
    def _relevant(hit: OfferHit, themes: list[str]) -> bool:
        """Below both floors an offer is noise, unless it carries a theme the question names."""
        if hit.dense_similarity >= MIN_DENSE_SIMILARITY or hit.bm25_score >= MIN_BM25_SCORE:
            return True
        return bool(set(hit.offer.themes) & set(themes))

    def rank(self, query: str, profile: Profile | None = None, message: str | None = None) -> list[OfferHit]:
        """Candidate offers for a question, relevance-gated and ranked by the documented final score."""
        return self._candidates(query, profile or Profile(), message)[0]

    def _candidates(self, query: str, profile: Profile, message: str | None) -> tuple[list[OfferHit], dict[str, Verdict]]:
        """Ranked candidates and their eligibility verdicts, each computed once per turn."""
        hits = [h for h in self.retriever.search(query, limit=SEARCH_DEPTH) if self._relevant(h, profile.themes)]
        # Offers carrying a theme the question names are candidates even if neither retriever saw
        # them (short titles such as "Pose de 2 citernes DECI"); with no fused score they rank last.
        seen = {h.offer.id for h in hits}
        themed = [o for o in self.offers.values() if o.id not in seen and set(o.themes) & set(profile.themes)]
        hits += [OfferHit(offer=o, score=0.0) for o in sorted(themed, key=lambda o: o.id)]
        ranked, verdicts = self._rank(hits, profile, message or query)
        ranked = ranked[:CANDIDATES]
        return ranked, {h.offer.id: verdicts[h.offer.id] for h in ranked}

    def _rank(self, hits: list[OfferHit], profile: Profile, message: str) -> tuple[list[OfferHit], dict[str, Verdict]]:
        folded = fold(message)
        kept = [h for h in hits if h.offer.status == "active" or names_offer(folded, h.offer)]
        verdicts = {h.offer.id: evaluate(h.offer, profile) for h in kept}
        for hit in kept:
            offer, adjustments = hit.offer, {}
            if names_offer(folded, offer, titles_only=True):
                adjustments["named"] = NAMED_BONUS
            elif names_offer(folded, offer):
                adjustments["named"] = ALIAS_BONUS
            if set(offer.themes) & set(profile.themes):
                adjustments["theme"] = THEME_BONUS
            if profile.need and set(offer.support_types) & NEED_SUPPORTS[profile.need]:
                adjustments["need"] = NEED_BONUS
            if targets(offer, verdicts[offer.id]):
                adjustments["targeted"] = TARGET_BONUS
            if profile.need != "outil" and set(offer.support_types) <= INFORMATION_ONLY:
                adjustments["information_only"] = INFORMATION_PENALTY
            hit.adjustments = adjustments
        return sorted(kept, key=lambda h: (-h.final_score, h.offer.id)), verdicts

    def _clarification(
        self, message: str, profile: Profile, recommended: list[OfferHit], state: dict
    ) -> Clarification | None:
        """One short question when the best offers hinge on who is asking and the asker did not say.

        Asked only if (a) a place is ambiguous, or (b) one of the two best offers has population or
        cost rules, the collectivity or its size is unknown, and the question is about eligibility or
        cost or too vague to answer well. Never twice the same, never more than two in a row.
        """
        if not recommended or state.get("clarifications_in_row", 0) >= MAX_CLARIFICATIONS_IN_ROW:
            return None
        asked = set(state.get("asked", []))
        local_contact = recommended[0].offer.access.contact in LOCAL_CONTACTS
        place_matters = not profile.region_code or (local_contact and not profile.departement_code)
        if profile.ambiguous_places and not profile.insee and place_matters and "place" not in asked:
            options = [(p, f"C'est {p}") for p in profile.ambiguous_places]
            return Clarification("place", "Plusieurs communes portent ce nom : laquelle est la vôtre ?", options)
        folded = fold(message)
        if names_offer(folded, recommended[0].offer):
            recommended = recommended[:1]  # the asker named the offer: only its own rules matter
        def has_rules(hit: OfferHit) -> bool:
            return bool(hit.offer.eligibility.population or (hit.offer.cost and hit.offer.cost.free_for))

        about_rights = bool(ELIGIBILITY_QUESTION.search(folded))
        vague = len(words(message)) <= VAGUE_MAX_WORDS
        depends = has_rules(recommended[0]) or (about_rights and any(has_rules(h) for h in recommended[1:2]))
        if not depends or not (about_rights or vague):
            return None
        if profile.collectivity_type is None and "who" not in asked:
            return Clarification("who", "Pour vous répondre précisément : quelle collectivité représentez-vous, et de quelle taille ?", WHO_OPTIONS)
        if profile.population is None and profile.collectivity_type in {"commune", "epci"} and "population" not in asked:
            return Clarification(
                "population",
                "Combien d'habitants compte votre collectivité ? Cela change les offres accessibles (et leur gratuité).",
                POPULATION_OPTIONS,
            )
        return None

    def _contact(self, profile: Profile, offer: Offer | None = None) -> Contact | None:
        """The concrete door for the asker's territory: the offer's own (ContactDirectory.for_offer:
        service page for online offers, sous-préfecture beside the préfecture…), else the State's office."""
        if offer is None:
            found = self.contacts.state_office(profile.insee, profile.departement_code)
        else:
            found = self.contacts.for_offer(offer, profile.departement_code, profile.region_code, profile.insee)
        return Contact(found.name, found.url, found.note, found.phone) if found else None

    def _referral(self, hit: OfferHit, verdict: Verdict, profile: Profile) -> Referral:
        offer = hit.offer
        reasons = []
        matched = [self.theme_labels[t] for t in offer.themes if t in profile.themes]
        if matched:
            reasons.append("thème " + ", ".join(f"« {m} »" for m in matched))
        else:
            reasons.append("proche de votre demande : « " + self.theme_labels.get(offer.themes[0], offer.themes[0]) + " »")
        reasons += [m for m in verdict.met if m.startswith("réservée")]
        if verdict.free:
            reasons.append("gratuite pour votre collectivité")
        if profile.stage == "travaux" and "op" in offer.project_steps or profile.stage in {"idee", "etudes"} and "preop" in offer.project_steps:
            reasons.append("adaptée à l'étape de votre projet")
        return Referral(hit, verdict, reasons, self._contact(profile, offer))

    @staticmethod
    def _focus_text(focus: str | None, referrals: list[Referral]) -> str | None:
        if not focus or not referrals:
            return None
        lines = []
        for r in referrals:
            if focus == "contact":
                from assistant.answer import contact_line

                lines.append(f"- {r.offer.title} : {contact_line(r)}")
            else:
                lines.append(f"- {r.offer.title} : {cost_sentence(r)}")
        title = "Qui contacter :" if focus == "contact" else "Ce que cela coûte :"
        return title + "\n" + "\n".join(lines)


def names_offer(folded_message: str, offer: Offer, titles_only: bool = False) -> bool:
    """Whether the question names the offer: its title, or an alias as a whole word ("PVD", "OPAH-RU")."""
    for name in [offer.title] if titles_only else [offer.title, *offer.aliases]:
        key = fold(name)
        if len(key) >= 3 and re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", folded_message):
            return True
    return False


def targets(offer: Offer, verdict: Verdict) -> bool:
    """An offer reserved to (or free for) a size or territory the asker is known to fit is more specific to them."""
    restricted = bool(offer.eligibility.population or offer.eligibility.territory_all)
    return (restricted and verdict.status == "eligible") or verdict.free is True


def cost_sentence(referral: Referral) -> str:
    offer, verdict = referral.offer, referral.verdict
    if verdict.free is True:
        return "gratuit pour votre collectivité"
    if verdict.free is False:
        return "pas gratuit pour votre collectivité" + (f" — {offer.cost.note}" if offer.cost and offer.cost.note else "")
    if offer.cost and offer.cost.free_for:
        return "gratuit sous condition de taille (" + (offer.cost.note or "à vérifier") + ")"
    kinds = set(offer.support_types)
    if kinds & {"loan", "recoverable_advance"}:
        return "c'est un financement remboursable (prêt ou avance)"
    if "grant" in kinds:
        return "c'est une aide financière (subvention) ; un reste à charge demeure en général"
    if kinds & {"tool", "network", "training"}:
        return "outil, réseau ou formation mis à disposition ; les conditions sont précisées sur la page officielle"
    return "les conditions financières sont à confirmer auprès de l'interlocuteur indiqué"


def _join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "\n\n".join(kept) if kept else None


def referral_payload(referral: Referral) -> dict:
    offer = referral.offer
    return {
        "offer_id": offer.id,
        "partner": offer.partner,
        "title": offer.title,
        "score": round(referral.hit.score, 6),
        "reasons": referral.reasons,
        "url": offer.url,
        "status": offer.status,
        "eligibility": referral.verdict.as_dict(),
        "how_to_start": offer.access.steps,
        "contact": (
            {"name": referral.contact.name, "url": referral.contact.url, "phone": referral.contact.phone}
            if referral.contact
            else {"name": offer.access.entry_point, "url": None}
        ),
        "summary": offer.summary,
    }


def clarification_payload(clarification: Clarification | None) -> dict | None:
    if clarification is None:
        return None
    return {
        "question": clarification.question,
        "options": [{"label": label, "value": value} for label, value in clarification.options],
    }


def candidate_payload(hit: OfferHit, verdict: Verdict) -> dict:
    return {
        "offer_id": hit.offer.id,
        "partner": hit.offer.partner,
        "title": hit.offer.title,
        **hit.breakdown(),
        "eligibility": verdict.as_dict(),
    }
