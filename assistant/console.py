"""What the referral console shows and stores: filtered conversations, detail, feedback, reviews,
exports (CSV, gold-set JSONL), statistics and unmet needs. Plain functions over the database so that
the API routers stay thin and the CLI or a notebook can reuse them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import selectinload

from assistant.store import Conversation, Database, Feedback, Review, Turn

RATINGS = ("up", "down")
REASONS = {
    "offre-expiree": "offre expirée",
    "mauvais-territoire": "mauvais territoire",
    "mauvais-theme": "mauvais thème",
    "mauvais-partenaire": "mauvais partenaire",
    "autre": "autre",
}
REVIEW_STATUSES = ("pending", "validated", "corrected")
FEEDBACK_FILTERS = ("up", "down", "none", "any")
GRANULARITIES = ("day", "week", "month")
TYPE_LABELS = {"commune": "Commune", "epci": "Intercommunalité", "department": "Département", "region": "Région", "other": "Collectivité"}
NO_THEME = "sans-theme"
NO_THEME_LABEL = "Thème non identifié"
UNKNOWN_DEPARTEMENT = "Département inconnu"
CSV_COLUMNS = [
    "conversation_id", "cree_le", "mis_a_jour_le", "collectivite", "type", "population", "departement",
    "region", "themes", "partenaires", "offres_proposees", "premier_message", "echanges", "avis_positifs",
    "avis_negatifs", "statut_revue", "besoin_non_couvert",
]


class NotFound(LookupError):
    """An unknown conversation or message: the API answers 404 with this French message."""


class Invalid(ValueError):
    """A request that names something impossible: the API answers 422 with this French message."""


@dataclass
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    departement: str | None = None
    region: str | None = None
    partner: str | None = None
    theme: str | None = None
    feedback: str | None = None  # up, down, none, any
    review: str | None = None  # pending, validated, corrected
    q: str | None = None
    unmet: bool | None = None


def departement_code(value: str, departements: dict) -> str:
    """A département given by code (« 15 », « 2A », « 971 ») or by name (« Cantal », « corse-du-sud »,
    accents and case ignored) -> its code. `departements`: code -> object with `.name` (the
    territory tables). Raises Invalid with a French message when nothing matches."""
    from assistant.text import fold

    text = value.strip()
    code = text.upper().zfill(2) if text.isdigit() else text.upper()
    if code in departements:
        return code
    wanted = fold(text).replace("-", " ").replace("'", " ")
    for known, departement in departements.items():
        if fold(departement.name).replace("-", " ").replace("'", " ") == wanted:
            return known
    raise Invalid(f"Département inconnu : « {text} ». Donnez son code (ex. 15, 2A) ou son nom (ex. Cantal).")


def _value(x) -> str:
    return str(getattr(x, "value", x))


def _where(query, filters: Filters):
    """The filters SQL can apply on the conversation row (indexed columns), plus « has a turn »."""
    if filters.date_from:
        query = query.where(Conversation.created_at >= dt.datetime.combine(filters.date_from, dt.time()))
    if filters.date_to:
        query = query.where(Conversation.created_at < dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time()))
    if filters.departement:
        query = query.where(Conversation.departement_code == filters.departement.upper())
    if filters.region:
        query = query.where(Conversation.region_code == filters.region)
    if filters.review:
        query = query.where(Conversation.review_status == filters.review)
    return query.where(Conversation.turns.any())


def _in_sql_only(filters: Filters) -> bool:
    """True when no filter needs the turns' content (partner, theme, feedback, text, unmet)."""
    return not any((filters.partner, filters.theme, filters.feedback, filters.q, filters.unmet is not None))


def _with_turns(query):
    return query.options(selectinload(Conversation.turns).selectinload(Turn.feedback), selectinload(Conversation.reviews))


def _load(db: Database, filters: Filters) -> list[Conversation]:
    query = _with_turns(_where(select(Conversation), filters)).order_by(Conversation.updated_at.desc(), Conversation.id)
    with db.session() as session:
        conversations = list(session.scalars(query))
    return [c for c in conversations if _matches(c, filters)]


def _partners(conversation: Conversation) -> list[str]:
    return sorted({_value(r["partner"]) for t in conversation.turns for r in t.referrals or []})


def _themes(conversation: Conversation) -> list[str]:
    return sorted({th for t in conversation.turns for th in t.themes or []})


def _ratings(conversation: Conversation) -> Counter:
    return Counter(f.rating for t in conversation.turns for f in t.feedback)


def _turn_unmet(turn: Turn) -> list[str]:
    reasons = []
    if turn.kind == "no_match":
        reasons.append("aucune offre éligible")
    for f in turn.feedback:
        if f.rating == "down":
            reasons.append("avis négatif" + (f" : {REASONS.get(f.reason, f.reason)}" if f.reason else ""))
    return reasons


def _matches(c: Conversation, f: Filters) -> bool:
    if not c.turns:
        return False
    if f.partner and f.partner not in _partners(c):
        return False
    if f.theme and f.theme not in _themes(c):
        return False
    if f.feedback:
        ratings = _ratings(c)
        if f.feedback in RATINGS and not ratings[f.feedback]:
            return False
        if f.feedback == "none" and ratings:
            return False
        if f.feedback == "any" and not ratings:
            return False
    if f.unmet is not None and f.unmet != any(_turn_unmet(t) for t in c.turns):
        return False
    if f.q:
        from assistant.text import fold

        needle = fold(f.q.strip())
        haystack = fold(" ".join([c.id, (c.profile or {}).get("name") or ""] + [t.message for t in c.turns]))
        if needle not in haystack:
            return False
    return True


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.replace(microsecond=0).isoformat() + "Z" if moment else None


def summary(c: Conversation) -> dict:
    profile = c.profile or {}
    ratings = _ratings(c)
    offers = {r["offer_id"]: {"offer_id": r["offer_id"], "title": r["title"], "partner": _value(r["partner"])}
              for t in c.turns for r in t.referrals or []}
    return {
        "id": c.id,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "turns": len(c.turns),
        "first_message": c.turns[0].message[:280],
        "collectivity": profile.get("name"),
        "collectivity_type": profile.get("collectivity_type"),
        "population": profile.get("population"),
        "departement_code": c.departement_code,
        "departement_name": profile.get("departement_name"),
        "region_code": c.region_code,
        "region_name": profile.get("region_name"),
        "themes": _themes(c),
        "partners": _partners(c),
        "offers": list(offers.values()),
        "feedback": {"up": ratings["up"], "down": ratings["down"]},
        "review_status": c.review_status,
        "unmet": any(_turn_unmet(t) for t in c.turns),
    }


def list_conversations(db: Database, filters: Filters, offset: int = 0, limit: int = 25) -> dict:
    """One page of conversations, newest first. Filters on the conversation row are counted and
    paged in SQL (only the page's turns are read); filters on the turns' content read the
    matching rows' turns."""
    if _in_sql_only(filters):
        with db.session() as session:
            total = session.scalar(_where(select(func.count(Conversation.id)), filters))
            page = session.scalars(
                _with_turns(_where(select(Conversation), filters))
                .order_by(Conversation.updated_at.desc(), Conversation.id).offset(offset).limit(limit)
            ).all()
            return {"total": total, "offset": offset, "limit": limit, "items": [summary(c) for c in page]}
    found = _load(db, filters)
    return {"total": len(found), "offset": offset, "limit": limit, "items": [summary(c) for c in found[offset : offset + limit]]}


def _feedback_dict(f: Feedback) -> dict:
    return {"rating": f.rating, "reason": f.reason, "reason_label": REASONS.get(f.reason or ""), "comment": f.comment,
            "created_at": _iso(f.created_at)}


def _review_dict(r: Review, numbers: dict[int, int]) -> dict:
    return {"id": r.id, "message_id": numbers.get(r.turn_id), "status": r.status, "primary": r.primary,
            "acceptable": r.acceptable, "note": r.note, "reviewer": r.reviewer, "created_at": _iso(r.created_at)}


def _get(session, conversation_id: str) -> Conversation:
    conversation = session.get(
        Conversation, conversation_id,
        options=[selectinload(Conversation.turns).selectinload(Turn.feedback), selectinload(Conversation.reviews)],
    )
    if conversation is None:
        raise NotFound("Conversation inconnue (ou supprimée à l'issue de la durée de conservation).")
    return conversation


def conversation_detail(db: Database, conversation_id: str) -> dict:
    with db.session() as session:
        c = _get(session, conversation_id)
        numbers = {t.id: t.number for t in c.turns}
        return {
            **summary(c),
            "profile": c.profile or {},
            "messages": [
                {
                    "message_id": t.number,
                    "created_at": _iso(t.created_at),
                    "message": t.message,
                    "answer": t.answer,
                    "kind": t.kind,
                    "generator": t.generator,
                    "themes": t.themes or [],
                    "profile": t.profile or {},
                    "referrals": t.referrals or [],
                    "retrieved": t.retrieved or [],
                    "feedback": [_feedback_dict(f) for f in t.feedback],
                    "unmet": _turn_unmet(t),
                }
                for t in c.turns
            ],
            "reviews": [_review_dict(r, numbers) for r in c.reviews],
        }


def public_conversation(db: Database, conversation_id: str) -> dict:
    """What the widget needs to restore a conversation after a reload (its holder knows the id):
    the exchanges as the widget showed them, and nothing of the resolved profile beyond them."""
    with db.session() as session:
        c = _get(session, conversation_id)
        messages = []
        for t in c.turns:
            last = t.feedback[-1] if t.feedback else None
            messages.append({
                "message_id": t.number,
                "message": t.message,
                "answer": t.answer,
                "kind": t.kind,
                "referrals": t.referrals or [],
                "clarification": t.clarification,
                "feedback": last.rating if last else None,
            })
        return {"conversation_id": c.id, "messages": messages}


def record_feedback(db: Database, conversation_id: str, message_id: int, rating: str, reason: str | None,
                    comment: str | None) -> int:
    if rating not in RATINGS:
        raise Invalid("Avis invalide : « up » ou « down ».")
    if reason is not None and reason not in REASONS:
        raise Invalid("Raison inconnue : " + ", ".join(REASONS) + ".")
    with db.writing() as session:
        turn = session.scalar(select(Turn).where(Turn.conversation_id == conversation_id, Turn.number == message_id))
        if turn is None:
            exists = session.get(Conversation, conversation_id) is not None
            raise NotFound("Message inconnu dans cette conversation." if exists else "Conversation inconnue.")
        row = Feedback(turn_id=turn.id, rating=rating, reason=reason, comment=(comment or "").strip() or None)
        session.add(row)
        session.flush()
        return row.id


def add_review(db: Database, conversation_id: str, message_id: int | None, status: str, primary: list[str] | None,
               acceptable: list[str] | None, note: str | None, reviewer: str, known_offers: Iterable[str]) -> dict:
    if status not in ("validated", "corrected"):
        raise Invalid("Statut de revue invalide : « validated » ou « corrected ».")
    known = set(known_offers)
    unknown = sorted((set(primary or []) | set(acceptable or [])) - known)
    if unknown:
        raise Invalid("Offre(s) inconnue(s) du corpus : " + ", ".join(unknown))
    with db.writing() as session:
        c = _get(session, conversation_id)
        answered = [t for t in c.turns if t.kind != "clarification"] or c.turns
        turn = answered[-1] if message_id is None else next((t for t in c.turns if t.number == message_id), None)
        if turn is None:
            raise NotFound("Message inconnu dans cette conversation.")
        if status == "validated" and primary is None:
            proposed = [r["offer_id"] for r in turn.referrals or []]
            primary, acceptable = proposed[:2], proposed[2:6]
        primary = list(dict.fromkeys(primary or []))
        acceptable = [o for o in dict.fromkeys(acceptable or []) if o not in primary]
        if len(primary) > 2 or len(acceptable) > 4:
            raise Invalid("Au plus 2 offres principales et 4 offres acceptables (format du jeu d'évaluation).")
        review = Review(conversation_id=c.id, turn_id=turn.id, status=status, primary=primary, acceptable=acceptable,
                        note=(note or "").strip() or None, reviewer=reviewer)
        session.add(review)
        c.review_status = status
        session.flush()
        return _review_dict(review, {turn.id: turn.number})


def delete_conversation(db: Database, conversation_id: str) -> None:
    with db.writing() as session:
        if session.get(Conversation, conversation_id) is None:
            raise NotFound("Conversation inconnue.")
        session.execute(delete(Conversation).where(Conversation.id == conversation_id))


# ---- exports ------------------------------------------------------------------------------
def _cell(value) -> str:
    text = "" if value is None else str(value)
    # No formula injection: spreadsheets skip leading blanks before =, +, - or @ (OWASP CSV injection).
    return "'" + text if text.lstrip(" \t\r\n")[:1] in ("=", "+", "-", "@") or text[:1] in ("\t", "\r") else text


def csv_export(db: Database, filters: Filters) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheet programs then read UTF-8 accents correctly
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in _load(db, filters):
        s = summary(c)
        writer.writerow([_cell(v) for v in (
            s["id"], s["created_at"], s["updated_at"], s["collectivity"], s["collectivity_type"], s["population"],
            s["departement_code"], s["region_code"], ",".join(s["themes"]), ",".join(s["partners"]),
            ",".join(o["offer_id"] for o in s["offers"]), s["first_message"], s["turns"], s["feedback"]["up"],
            s["feedback"]["down"], s["review_status"], "oui" if s["unmet"] else "non",
        )])
    return out.getvalue()


def _persona(profile: dict) -> str:
    who = TYPE_LABELS.get(profile.get("collectivity_type") or "other", "Collectivité")
    parts = [f"{who} {profile['name']}" if profile.get("name") else who]
    if profile.get("departement_name"):
        parts[0] += f" ({profile['departement_name']})"
    if profile.get("population"):
        parts.append(f"{profile['population']} habitants")
    return ", ".join(parts) + " — conversation réelle relue dans la console"


def gold_cases(db: Database, offers: dict) -> list[dict]:
    """Reviewed answers as evaluation cases in the format of evals/datasets/gold.jsonl (last review of
    each answer wins). Ids are `rev-NNNN`: evaluators renumber them when they merge cases into the set."""
    with db.session() as session:
        reviews = list(session.scalars(select(Review).options(selectinload(Review.turn)).order_by(Review.id)))
        latest = {r.turn_id: r for r in reviews}
        cases = []
        for review in sorted(latest.values(), key=lambda r: r.id):
            turn = review.turn
            earlier = session.scalars(select(Turn).where(Turn.conversation_id == turn.conversation_id,
                                                         Turn.number <= turn.number).order_by(Turn.number)).all()
            turns = [t.message for t in earlier][-3:]
            partners = list(dict.fromkeys(_value(offers[o].partner) for o in review.primary if o in offers))
            checks = [] if review.primary else ["refusal"]
            kind = "multi_turn" if len(turns) > 1 else ("single" if review.primary else "out_of_scope")
            proposed = ", ".join(r["offer_id"] for r in turn.referrals or []) or "aucune offre"
            verdict = "orientation validée" if review.status == "validated" else "orientation corrigée"
            notes = f"{verdict.capitalize()} par {review.reviewer} (réponse d'origine : {proposed})."
            if review.note:
                notes += " " + review.note
            cases.append({
                "id": f"rev-{review.id:04d}",
                "split": "dev",
                "kind": kind,
                "persona": _persona(turn.profile or {}),
                "turns": turns,
                "expected": {"primary": review.primary, "acceptable": review.acceptable,
                             "partners": partners if review.primary else []},
                "checks": checks,
                "notes": notes,
            })
        return cases


# ---- statistics and unmet needs -------------------------------------------------------------
def _period(moment: dt.datetime, granularity: str) -> str:
    if granularity == "day":
        return moment.date().isoformat()
    if granularity == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-S{week:02d}"
    return moment.strftime("%Y-%m")


def statistics(db: Database, filters: Filters, theme_labels: dict[str, str], granularity: str = "week") -> dict:
    if granularity not in GRANULARITIES:
        raise Invalid("Pas de temps invalide : day, week ou month.")
    by_partner: Counter = Counter()
    by_theme: Counter = Counter()
    by_departement: Counter = Counter()
    series: dict[str, Counter] = defaultdict(Counter)
    departement_names: dict[str, str] = {}
    conversations = _load(db, filters)
    totals = Counter()
    for c in conversations:
        totals["conversations"] += 1
        departement = c.departement_code or "?"
        if c.departement_code and (c.profile or {}).get("departement_name"):
            departement_names[departement] = c.profile["departement_name"]
        for t in c.turns:
            totals["messages"] += 1
            totals["unmet"] += bool(_turn_unmet(t))
            for f in t.feedback:
                totals[f"feedback_{f.rating}"] += 1
            for r in t.referrals or []:
                partner = _value(r["partner"])
                totals["referrals"] += 1
                by_partner[partner] += 1
                for theme in t.themes or [NO_THEME]:
                    by_theme[theme] += 1
                by_departement[departement] += 1
                series[_period(t.created_at, granularity)][partner] += 1
    labels = {**theme_labels, NO_THEME: NO_THEME_LABEL}
    return {
        "granularity": granularity,
        "totals": {k: totals[k] for k in ("conversations", "messages", "referrals", "unmet", "feedback_up", "feedback_down")},
        "by_partner": [{"key": k, "label": k, "count": n} for k, n in by_partner.most_common()],
        "by_theme": [{"key": k, "label": labels.get(k, k), "count": n} for k, n in by_theme.most_common()],
        "by_departement": [
            {"key": k, "label": f"{k} — {departement_names[k]}" if k in departement_names else (UNKNOWN_DEPARTEMENT if k == "?" else k), "count": n}
            for k, n in by_departement.most_common()
        ],
        "series": [{"period": p, "counts": dict(series[p])} for p in sorted(series)],
    }


def unmet_needs(db: Database, filters: Filters, theme_labels: dict[str, str]) -> dict:
    """Questions that got no eligible offer or a 👎, grouped by theme and département."""
    groups: dict[tuple[str, str], dict] = {}
    for c in _load(db, filters):
        profile = c.profile or {}
        departement = c.departement_code or "?"
        departement_label = f"{departement} — {profile['departement_name']}" if c.departement_code and profile.get("departement_name") else (
            UNKNOWN_DEPARTEMENT if departement == "?" else departement)
        for t in c.turns:
            reasons = _turn_unmet(t)
            if not reasons:
                continue
            for theme in (t.themes or [NO_THEME])[:1]:
                key = (theme, departement)
                group = groups.setdefault(key, {
                    "theme": theme, "theme_label": {**theme_labels, NO_THEME: NO_THEME_LABEL}.get(theme, theme),
                    "departement": None if departement == "?" else departement, "departement_label": departement_label,
                    "count": 0, "questions": [],
                })
                group["count"] += 1
                group["questions"].append({"conversation_id": c.id, "message_id": t.number, "message": t.message,
                                           "first_message": c.turns[0].message if c.turns else t.message,
                                           "reasons": reasons, "created_at": _iso(t.created_at),
                                           "collectivity": profile.get("name")})
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["theme_label"], g["departement_label"]))
    return {"total": sum(g["count"] for g in ordered), "groups": ordered}
