"""The assistant: wires the stages of one conversation turn (assistant/pipeline/) to the corpus,
the index, the generator and the database.

    normalise → understand → judge.scope → retrieve → rank → judge (eligibility, notices,
    clarification) → compose → persist

Each stage is a plain function of assistant.pipeline; the ranking constants are in
assistant.pipeline.rank (and the README table). `TurnResult` and the payload helpers are
re-exported here for the API and the evaluation.
"""

from __future__ import annotations

import re
import threading
import time
from functools import cached_property
from collections.abc import Iterator

import numpy as np

from assistant.catalogue import CardNames, CatalogueHandle
from assistant.answer import AnswerContext, AnswerGenerator, GeneratedAnswer, GroundedGenerator, stream_answer
from assistant.config import Settings
from assistant.contacts import ContactDirectory
from assistant.eligibility import Verdict
from assistant.embeddings import build_embeddings, cached_document_vectors, embeddings_signature
from assistant.everyday import EverydayModel, SignpostFinder, door_only_themes
from assistant.generators import build_generator
from assistant.mirror import MIRROR_SUFFIXES
from assistant.offer_names import Named
from assistant.perimeter import PerimeterResolver
from assistant.pipeline import persist
from assistant.pipeline.catalogue import CatalogueStage, section
from assistant.pipeline.compose import (TurnResult, contact_for, door_lines, doors_text, focus_text, generate, join, referral,
                                        signpost_door)
from assistant.pipeline.door import open_door, refusal_doors, shown_before
from assistant.pipeline.judge import clarify, scope
from assistant.pipeline.judge.clarify import Clarification
from assistant.pipeline.judge.notices import PremiseIndex, programme_names, unknown_programmes
from assistant.pipeline.normalise import normalise
from assistant.pipeline.persist import candidate_payload, clarification_payload, referral_payload
from assistant.pipeline.rank import rank as rank_hits
from assistant.pipeline.retrieve import retrieve
from assistant.pipeline.understand import keep_topic, understand
from assistant.profile import Profile, apply_territory, unknown_code_notice
from assistant.readiness import CorpusWatch
from assistant.retrieval import HybridRetriever, IndexHandle, IndexNotReady, LoadedIndex, OfferHit, SearchFilters
from assistant.schema import Offer, PartnerCard
from assistant.scope import load_scope_model
from assistant.scope.doors import SIGNPOST_OF_DOOR
from assistant.store import Database, new_conversation_id
from assistant.territory import Territories
from assistant.text import fold, literal
from assistant.vectorstore import read_in_background
from ingest.corpus import load_corpus, load_signposts, load_themes
from ingest.indexer import corpus_stamps, index_dir, unchanged_offers

INSEE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")  # a commune's code (COG): 5 digits, Corsica 2A/2B

__all__ = [
    "Assistant",
    "Clarification",
    "TurnResult",
    "candidate_payload",
    "clarification_payload",
    "referral_payload",
]


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
        self.scope = load_scope_model()
        # The scope model reads the query vector retrieval needs anyway, when trained on these embeddings.
        self._scope_reads_vectors = self.scope.uses(embeddings_signature(self.embeddings))
        self.themes = load_themes(settings.corpus_dir)
        self.theme_labels = {t.id: t.label for t in self.themes.themes}
        # The territory tables (≈ 0.3 s of CPU to index 35,000 communes) load on first use, which
        # warm_up() starts in a background thread; their files are checked now.
        Territories.check(settings.corpus_dir)
        self._territories: Territories | None = None
        self._territories_lock = threading.Lock()
        self.catalogue = CatalogueHandle(settings)  # imported aids, when `aiguillage catalogue sync` ran
        self.contacts = ContactDirectory.load(settings.corpus_dir)
        self.generator = generator or build_generator(settings)
        self.grounded = GroundedGenerator()
        if database is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            database = Database(settings.sqlalchemy_url, spool_dir=settings.data_dir / "pending-turns")
            database.create_schema()
        self.db = database
        self.corpus_watch = CorpusWatch(settings.corpus_dir)  # the corpus warnings of /readyz

    # ---- reading the corpus -------------------------------------------------------------
    @property
    def territories(self) -> Territories:
        """The territory tables (assistant.territory), loaded once, on first use (thread-safe)."""
        with self._territories_lock:
            if self._territories is None:
                self._territories = Territories.load(self.settings.corpus_dir, self.settings.data_dir / "cache")
            return self._territories

    @property
    def offers(self) -> dict[str, Offer]:
        return self.handle.current().offers

    @cached_property
    def catalogue_stage(self) -> CatalogueStage:
        """Perimeters of imported aids against the territory tables; built on the first turn that needs it."""
        return CatalogueStage(PerimeterResolver(self.territories))

    @cached_property
    def everyday(self) -> EverydayModel:
        """The calibrated door models (assistant/models/everyday.json), read once."""
        return EverydayModel.load()

    @property
    def signpost_finder(self) -> SignpostFinder:
        """The signpost cards of the corpus (corpus/signposts/), scored against messages; their texts'
        vectors are read from DATA_DIR/cache when these embeddings already encoded these texts. Built
        once per index generation: which themes only a door serves depends on the live offers."""
        return self._finder(self.handle.current())

    def _finder(self, index: LoadedIndex) -> SignpostFinder:
        """`signpost_finder` of this generation (the one a turn holds), built once per generation."""
        return index.memo("signpost-finder", lambda: self._signpost_finder(index))

    def _signpost_finder(self, index) -> SignpostFinder:
        signposts = list(load_signposts(self.settings.corpus_dir, self.themes, set(index.offers)).values())
        finder = SignpostFinder(signposts, self.themes, door_only_themes(self.themes, index.active_themes, signposts), self.embeddings)
        finder.use_vectors(cached_document_vectors(self.embeddings, finder.texts, self.settings.data_dir / "cache"))
        return finder

    def _corpus(self):
        """The corpus on disk; cards unchanged since the live index was built come from its snapshot
        instead of being parsed again (10,000 cards at 100x)."""
        try:
            index = self.handle.current()
        except IndexNotReady:
            return load_corpus(self.settings.corpus_dir)
        stamps = corpus_stamps(self.settings.corpus_dir)
        reuse = unchanged_offers(index.offers.values(), index.manifest.get("files", {}), stamps)
        return load_corpus(self.settings.corpus_dir, reuse=reuse)

    def partners(self) -> list[PartnerCard]:
        return sorted(self._corpus().partners.values(), key=lambda p: p.id)

    def warm_up(self) -> None:
        """Build now what the first turn would otherwise build (the index generation, its spelling
        lexicon, premise table and programme names, the door models, the signpost vectors), so that no question after
        /readyz pays for it, and start loading the territory tables (then validating the cards) in the background. Raises
        IndexNotReady when there is no index yet."""
        index = self.handle.current()
        # The stored vectors: with the generation's vector mirror (assistant.mirror), its pages are read
        # and its row indexes built in a second thread; without one, the Chroma collection, which /readyz
        # then counts and searches run on, is opened here (imports chromadb, ≈ 0.5 s of CPU; not from two
        # threads at once), then its first read, which loads the stored vectors
        # (assistant.vectorstore.read_in_background), runs on the second core. Either way, while this
        # thread builds the rest, and waited for before « ready ».
        if index.mirror is not None:
            loading = threading.Thread(target=index.mirror.warm, name="aiguillage-vectors", daemon=True)
            loading.start()
        else:
            loading = read_in_background(index.collection)
        # The territory tables (≈ 0.1 s of CPU read from DATA_DIR/cache, ≈ 0.3 s the first time) load
        # in a third thread meanwhile, not waited for: a question that comes before they are loaded
        # waits for them, under the lock. At 10,000 offers they are loaded before « ready », behind the
        # stored vectors.
        places = threading.Thread(target=lambda: self.territories, name="aiguillage-territories", daemon=True)
        places.start()
        _ = index.lexicon, self.everyday, self._finder(index)
        self._premise_index(index)
        self._programme_names(index)
        # And the corpus files against the build's record (the warnings of /readyz, assistant.readiness):
        # done here, before the background work below starts, the first /readyz has nothing to do but
        # read them.
        self.corpus_watch.check(index)
        index.mirror_problem()  # the mirror against the manifest, which /readyz reports
        loading.join()
        # The cards are then validated in the background (read without it at load: assistant.schema.OfferTable),
        # so that turns do not pay for it one card at a time: after « ready », it is ≈ 1 s of CPU at 10,000 offers.
        threading.Thread(target=lambda: (places.join(), index.offers.validate_all()), name="aiguillage-validation",
                         daemon=True).start()

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 10) -> list[OfferHit]:
        return self.retriever.search(query, filters, limit)

    def readiness(self) -> dict:
        """Ready when the loaded index generation is consistent and what it is searched on answers: its
        vector mirror when it has one (LoadedIndex.mirror_problem: as many rows as live and retired
        passages, the same ids; Chroma is not opened), else its Chroma collection (at least as many
        stored passages as live ones).

        Shape: {"ready": bool, "collection", "generation", "offers", "passages", "built_at", "warnings": [str]}
        or {"ready": False, "reason": str}. A corpus edited (or broken) on disk since the build is a
        warning, never a failure: the live index keeps serving what it was built from, and a load
        balancer must not pull every instance because of a card waiting for re-ingest. The warnings
        are those of the last comparison of the files (assistant.readiness.CorpusWatch: at most 10 s
        old, refreshed in the background), so that a probe reads no corpus file.
        """
        try:
            index = self.handle.current()
            problem = index.mirror_problem()
            stored = len(index.mirror.ids) if index.mirror is not None else index.collection.count()
        except Exception as exc:  # no manifest, lost collection, unreachable Chroma, unreadable snapshot
            return {"ready": False, "reason": f"index indisponible : {exc}"}
        expected = index.manifest["passages"]
        if problem is not None:  # the mirror is written again from Chroma by an ingest that finds it missing
            files = ", ".join(f"{index.generation}{suffix}" for suffix in MIRROR_SUFFIXES)
            return {"ready": False, "reason": f"index incohérent : {problem} ; supprimer {files} dans "
                                              f"{index_dir(self.settings)} puis lancer `aiguillage ingest`, qui "
                                              "réécrit cette copie depuis Chroma"}
        # The stored rows also hold, for one more generation, the passages a build retired.
        if not index.offers or stored < expected or len(index.passage_ids) != expected:
            return {"ready": False, "reason": f"index incohérent : {stored} passages stockés, {expected} attendus"}
        return {"ready": True, "collection": index.collection_name, "generation": index.generation,
                "offers": len(index.offers), "passages": expected,
                "built_at": index.manifest.get("built_at"), "warnings": self.corpus_watch.warnings(index)}

    def _signposts(self, ids, index: LoadedIndex) -> list:
        """The signpost cards (of the turn's index generation) whose id is in `ids`, in the corpus's order."""
        return [s for s in self._finder(index).signposts if s.id in ids]

    def _doors(self, signposts, profile: Profile) -> list[tuple]:
        """(card, its local office for `profile`: compose.signpost_door) of each signpost card."""
        return [(s, signpost_door(self.contacts, s, profile)) for s in signposts]

    def _programme_names(self, index: LoadedIndex):
        """The programme names the cards know, folded (notices.programme_names): built once per index
        generation (≈ 0.1 s of CPU at 10,600 offers, 11,950 names)."""
        return index.memo("programme-names", lambda: programme_names(index.name_lists.values()))

    def _premise_index(self, index: LoadedIndex) -> PremiseIndex:
        """Built once per index generation."""
        return index.memo("premises", lambda: PremiseIndex.from_phrases(
            [index.offers[i] for i in index.premise_offers], index.name_phrases))

    def profile_for(self, profile: Profile | None, insee: str | None) -> Profile | None:
        """The caller's known profile, completed from the territory tables when an INSEE code is given."""
        return self.profile_and_notice(profile, insee)[0]

    def profile_and_notice(self, profile: Profile | None, insee: str | None) -> tuple[Profile | None, str | None]:
        """(profile_for's profile, notice): the notice, in French, says that a given INSEE code names no
        commune of the territory tables (unknown like « 99999 », or not of the shape INSEE_CODE: five
        digits, or 2A/2B and three digits for Corsica, never read as a place name) and that the answer
        does not take the territory into account; None when no code is given (absent or blank) or it
        names a commune (or several, by a postcode: the turn then asks which). The code is read trimmed
        and in upper case, as the widget reads its data-insee."""
        code = (insee or "").strip().upper()  # as the widget reads its data-insee
        if not code:
            return profile, None
        resolution = self.territories.resolve(code) if INSEE_CODE.match(code) else None
        if resolution is None or (resolution.commune is None and not resolution.candidates):
            return profile, unknown_code_notice(insee.strip())
        base = profile or Profile()
        from_code = Profile()
        apply_territory(from_code, resolution)
        return from_code.merged_with(base), None

    def history(self, conversation_id: str) -> list[tuple[str, str]]:
        return persist.history(self.db, conversation_id)

    # ---- one conversation turn ----------------------------------------------------------
    def chat(self, message: str, conversation_id: str | None = None, profile: Profile | None = None,
             notice: str | None = None) -> TurnResult:
        """One turn; `notice` (profile_and_notice's) opens the answer."""
        started = time.perf_counter()
        result, state = self._prepare(message, conversation_id, profile, notice)
        if result.answer is None:
            result.answer = generate(self.generator, self.grounded, result.context)
        self._persist(message, result, state, started)
        return result

    def chat_stream(
        self, message: str, conversation_id: str | None = None, profile: Profile | None = None,
        notice: str | None = None,
    ) -> Iterator[tuple[str, object]]:
        """Events for streaming clients: ("start", TurnResult) with the referrals, ("delta", text)…,
        then ("done", TurnResult) whose answer is the final text (it may replace the deltas when a
        generator falls back to the grounded answer)."""
        started = time.perf_counter()
        result, state = self._prepare(message, conversation_id, profile, notice)
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

    def _prepare(self, message: str, conversation_id: str | None, profile: Profile | None,
                 notice: str | None = None) -> tuple[TurnResult, dict]:
        loaded = persist.load(self.db, conversation_id)
        known = loaded.known if profile is None else loaded.known.merged_with(profile)
        result = self._turn(message, conversation_id or new_conversation_id(), known, loaded.state, loaded.turns)
        result.message_id = loaded.turns + 1
        if notice and result.answer is not None:  # refusal, clarification, follow-up: the text is written
            result.answer.text = join(notice, result.answer.text)
        elif notice:
            result.context.preface = join(notice, result.context.preface)
        return result, loaded.state

    def _persist(self, message: str, result: TurnResult, state: dict, started: float) -> None:
        result.seconds = time.perf_counter() - started
        persist.save(self.db, message, result, state)

    def _turn(self, message: str, conversation_id: str, known: Profile, state: dict, earlier_turns: int) -> TurnResult:
        text = normalise(message)
        index = self.handle.current()
        # The vector retrieval reads: the query in the cards' spelling (HybridRetriever.search).
        embed = (lambda query: self._query_vector(index, query)) if self._scope_reads_vectors else None
        understood = understand(text, known, state, self.themes, self.territories, self.scope, embed, index.names)
        remembered = scope.follow_up_doors(understood, state)
        if remembered is not None:  # « et qui je contacte ? » answered by the previous turn's doors, again
            named = self._signposts(remembered["signposts"], index)
            doors = self._doors(named, understood.profile)
            text = scope.follow_up_doors_text(remembered, door_lines(doors), [literal(s.body) for s in named])
            return TurnResult(conversation_id, 0, "refusal" if remembered["refused"] else "answer",
                              GeneratedAnswer(text, "grounded"), [], [], understood.profile, doors=doors)
        if scope.refuses(understood):
            state["clarifications_in_row"] = 0
            answer = scope.refusal(understood)
            doors = []
            card = SIGNPOST_OF_DOOR.get(understood.decision.door_id)
            named = self._signposts([card], index)
            if named:  # the refusal names this body: its card adds where its local office is
                doors = self._doors(named, understood.profile)
                answer.text = join(answer.text, "\n".join(door_lines(doors)))
            elif understood.decision.kind == "out_of_scope":  # a resident's own affair: its door, when one is competent
                vector = understood.query_vector
                if vector is None:  # the scope model did not read it (other embeddings): encoded here
                    vector = self._query_vector(index, understood.query)
                found = refusal_doors(understood.query, understood.profile.themes, answer.text, self.everyday,
                                      self._finder(index), vector)
                doors = self._doors(found, understood.profile)
                answer.text = join(answer.text, doors_text(doors, True, False, refused=True))
            scope.remember_doors(understood, [s.id for s, _ in doors], state, refused=True)
            return TurnResult(conversation_id, 0, "refusal", answer, [], [], understood.profile, doors=doors)

        history = self.history(conversation_id) if earlier_turns else []  # a new conversation has none
        rewrite = getattr(self.generator, "rewrite_follow_up", None)
        if rewrite is not None and history:
            # An LLM, when configured, turns a follow-up into a standalone search query (time-boxed).
            rewritten = rewrite(text, history)
            if rewritten.rewritten:
                understood.query, understood.query_vector = rewritten.text, None
        keep_topic(understood, state)
        profile, query = understood.profile, understood.query
        canonical = index.lexicon.canonical(query)  # the query in the cards' spelling, read once per turn
        if understood.query_vector is None:  # encoded once: retrieval and the catalogue read it
            understood.query_vector = self._query_vector(index, query)
        vector = understood.query_vector

        corrections = self._premise_index(index).outdated_premises(text)
        ranked, verdicts, named = self._candidates(query, profile, text, vector, index)
        # The door models read the query as retrieval does, in the cards' spelling (its vector, encoded once).
        door = open_door(ranked, verdicts, profile, query, index, self.everyday, self._finder(index),
                         self.settings.max_referrals, vector)
        ranked, recommended, ineligible = door.candidates, door.recommended, door.ineligible
        follow_up = bool(understood.focus) and query != text
        if follow_up and state.get("shown_offers"):
            recommended = shown_before(state["shown_offers"], ranked, verdicts, profile, index)

        if follow_up and understood.focus == "contact":
            clarification = clarify.clarify_contact(
                profile, recommended, state, lambda offer: contact_for(self.contacts, profile, offer) is None)
        else:
            clarification = None if corrections else clarify.clarify(text, profile, recommended, state, named)
        clarify.record(clarification, query, state)
        if clarification is not None and not clarify.beside_offers(clarification):
            answer = GeneratedAnswer(clarification.question, "grounded")
            return TurnResult(conversation_id, 0, "clarification", answer, [], [], profile, clarification,
                              candidates=ranked, verdicts=verdicts)

        referrals = [referral(h, verdicts[h.offer.id], profile, self.theme_labels, self.contacts) for h in recommended]
        excluded = [referral(h, verdicts[h.offer.id], profile, self.theme_labels, self.contacts) for h in ineligible]
        doors = self._doors(door.signposts, profile)
        beside = clarify.beside_text(clarification) if clarification is not None else None
        known_names = self._programme_names(index)
        preface = join(beside, scope.injection_preface(understood), unknown_programmes(text, known_names),
                       doors_text(doors, door.leads, bool(referrals)))
        context = AnswerContext(
            question=text,
            profile=profile,
            referrals=referrals,
            ineligible=excluded,
            corrections=corrections,
            preface=join(preface, focus_text(understood.focus, referrals)),
            concise=follow_up,
            history=history,
            prefecture=contact_for(self.contacts, profile),
            doors_named=bool(doors),
        )
        if referrals and not follow_up:
            state["shown_offers"] = [r.offer.id for r in referrals]
        catalogue = self.catalogue.current()
        findings = None
        if catalogue is not None and not follow_up:
            cards = index.memo("card-names", lambda: CardNames(index.offers, index.names))
            findings = self.catalogue_stage.find(catalogue, canonical, vector, profile, cards)
            context.appendix = section(findings)
        scope.remember_doors(understood, [s.id for s, _ in doors], state, refused=False)
        kind = "answer" if referrals else "no_match"
        return TurnResult(conversation_id, 0, kind, None, referrals, excluded, profile, clarification, corrections, ranked,
                          context=context, verdicts=verdicts, doors=doors, catalogue=findings)

    def _query_vector(self, index: LoadedIndex, query: str) -> np.ndarray:
        """The query's embedding, encoded in the cards' spelling (LoadedIndex.lexicon) as retrieval reads
        it, as one array of the encoder's floats (float64, exact): the scope model, the vector search,
        the doors and the catalogue each read it as an array (float32 or float64), a cast instead of
        converting the encoder's list of 512 floats again (≈ 0.01 ms each). Read from the encoder's own array
        when the embeddings give it (UniversalSentenceEncoderEmbeddings.encode_query: the same values)."""
        text = index.lexicon.canonical(query)
        encode = getattr(self.embeddings, "encode_query", None)
        return np.asarray(encode(text) if encode is not None else self.embeddings.embed_query(text), dtype=np.float64)

    # ---- ranking, for the API and the evaluation -------------------------------------------
    def rank(self, query: str, profile: Profile | None = None, message: str | None = None) -> list[OfferHit]:
        """Candidate offers for a question, relevance-gated and ranked by the documented final score."""
        return self._candidates(query, profile or Profile(), message)[0]

    def _candidates(
        self, query: str, profile: Profile, message: str | None, query_vector: list[float] | None = None,
        index: LoadedIndex | None = None,
    ) -> tuple[list[OfferHit], dict[str, Verdict], Named]:
        """Ranked candidates, their eligibility verdicts and the offers the message names, once per turn
        (index: the generation the turn holds, else the current one)."""
        index = index or self.handle.current()
        named = index.names.find(fold(message or query))
        hits = retrieve(self.retriever, index, query, profile.themes, query_vector, profile.need, named)
        return (*rank_hits(hits, profile, named), named)
