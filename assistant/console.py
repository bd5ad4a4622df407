"""What the referral console shows and stores: filtered conversations, detail, feedback, reviews,
exports (CSV, gold-set JSONL), statistics and unmet needs. Plain functions over the database so that
the API routers stay thin and the CLI or a notebook can reuse them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, true
from sqlalchemy.orm import aliased, selectinload

from assistant.store import Conversation, Database, Feedback, Review, Turn, TurnReferral, TurnTheme

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


def _unmet_turn():
    """SQL condition on Turn: no eligible offer, or a 👎 (the SQL form of _turn_unmet)."""
    return or_(Turn.kind == "no_match", Turn.id.in_(select(Feedback.turn_id).where(Feedback.rating == "down")))


def _rated(rating: str | None = None):
    """Ids of the conversations with feedback (of this rating when given)."""
    query = select(Turn.conversation_id).join(Feedback, Feedback.turn_id == Turn.id)
    return query.where(Feedback.rating == rating) if rating else query


def _where(query, filters: Filters):
    """The conversations a console request is about, as SQL conditions on the conversation row
    (indexed columns, or membership in the indexed per-turn tables), plus « has a turn »."""
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
    if filters.partner:
        query = query.where(Conversation.id.in_(select(TurnReferral.conversation_id).where(TurnReferral.partner == filters.partner)))
    if filters.theme:
        query = query.where(Conversation.id.in_(select(TurnTheme.conversation_id).where(TurnTheme.theme == filters.theme)))
    if filters.feedback in RATINGS:
        query = query.where(Conversation.id.in_(_rated(filters.feedback)))
    elif filters.feedback == "any":
        query = query.where(Conversation.id.in_(_rated()))
    elif filters.feedback == "none":
        query = query.where(Conversation.id.not_in(_rated()))
    if filters.unmet is not None:
        unmet = Conversation.id.in_(select(Turn.conversation_id).where(_unmet_turn()))
        query = query.where(unmet if filters.unmet else ~unmet)
    if filters.q and filters.q.strip():
        from assistant.text import fold

        query = query.where(Conversation.search_text.contains(fold(filters.q.strip()), autoescape=True))
    return query.where(Conversation.turns.any())


def _scoped(column, filters: Filters):
    """SQL condition: `column` (a conversation id) belongs to a conversation the filters select.
    Without filters it is always true (every per-turn row belongs to a conversation with a turn)."""
    if filters == Filters():
        return true()
    return column.in_(_where(select(Conversation.id), filters))


def _with_turns(query):
    return query.options(selectinload(Conversation.turns).selectinload(Turn.feedback), selectinload(Conversation.reviews))


def _newest_first(query):
    return query.order_by(Conversation.updated_at.desc(), Conversation.id)


def _partners(conversation: Conversation) -> list[str]:
    return sorted({_value(r["partner"]) for t in conversation.turns for r in t.referrals or []})


def _themes(conversation: Conversation) -> list[str]:
    return sorted({th for t in conversation.turns for th in t.themes or []})


def _ratings(conversation: Conversation) -> Counter:
    return Counter(f.rating for t in conversation.turns for f in t.feedback)


def _reasons(kind: str, down_reasons: list[str | None]) -> list[str]:
    """Why a turn is an unmet need (French labels): no eligible offer, then each 👎 with its reason."""
    reasons = ["aucune offre éligible"] if kind == "no_match" else []
    return reasons + ["avis négatif" + (f" : {REASONS.get(r, r)}" if r else "") for r in down_reasons]


def _turn_unmet(turn: Turn) -> list[str]:
    return _reasons(turn.kind, [f.reason for f in turn.feedback if f.rating == "down"])


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
    """One page of conversations, newest first: {total, offset, limit, items: [summary]}. Every
    filter is counted and paged in SQL; only the page's turns are read."""
    with db.session() as session:
        total = session.scalar(_where(select(func.count(Conversation.id)), filters))
        page = session.scalars(_with_turns(_newest_first(_where(select(Conversation), filters))).offset(offset).limit(limit)).all()
        return {"total": total, "offset": offset, "limit": limit, "items": [summary(c) for c in page]}


def _each(db: Database, filters: Filters, chunk: int = 500) -> Iterator[Conversation]:
    """Every conversation the filters select, newest first, read `chunk` conversations at a time
    (with their turns) so that memory stays bounded."""
    with db.session() as session:
        ids = session.scalars(_newest_first(_where(select(Conversation.id), filters))).all()
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with db.session() as session:
            found = {c.id: c for c in session.scalars(_with_turns(select(Conversation).where(Conversation.id.in_(part))))}
        yield from (found[i] for i in part if i in found)


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
                    "catalogue": t.catalogue,
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
    for c in _each(db, filters):
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
def _period(day: dt.date, granularity: str) -> str:
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-S{week:02d}"
    return day.strftime("%Y-%m")


def _ranked(rows: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """(key, count) pairs, most frequent first, ties by key (a stable order from one call to the next)."""
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def _departement_label(code: str | None, name: str | None) -> str:
    if code is None:
        return UNKNOWN_DEPARTEMENT
    return f"{code} — {name}" if name else code


def _departement_names(session, codes: list[str]) -> dict[str, str]:
    """Département code -> the name stored in the profiles of its conversations."""
    name = Conversation.profile["departement_name"].as_string()
    rows = session.execute(
        select(Conversation.departement_code, func.max(name))
        .where(Conversation.departement_code.in_(codes), name.is_not(None)).group_by(Conversation.departement_code)
    )
    return {code: value for code, value in rows if value}


def statistics(db: Database, filters: Filters, theme_labels: dict[str, str], granularity: str = "week") -> dict:
    """Referrals of the filtered conversations, counted in SQL (turn_referrals, turn_themes).

    Returns {granularity, totals: {conversations, messages, referrals, unmet, feedback_up,
    feedback_down}, by_partner, by_theme, by_departement: [{key, label, count}] most frequent first
    (ties by key), series: [{period, counts: {partner: n}}] oldest first}. A referral counts once
    per theme of its turn (« sans-theme » when the turn has none) and under its conversation's
    département (« ? » when unknown); periods are ISO days, ISO weeks (2026-S05) or months.
    Raises Invalid for an unknown granularity."""
    if granularity not in GRANULARITIES:
        raise Invalid("Pas de temps invalide : day, week ou month.")
    referral_scope = _scoped(TurnReferral.conversation_id, filters)
    turn_scope = _scoped(Turn.conversation_id, filters)
    with db.session() as session:
        conversations = session.scalar(_where(select(func.count(Conversation.id)), filters))
        messages = session.scalar(select(func.count(Turn.id)).where(turn_scope))
        unmet = session.scalar(select(func.count(Turn.id)).where(turn_scope, _unmet_turn()))
        ratings = dict(session.execute(
            select(Feedback.rating, func.count(Feedback.id)).join(Turn, Turn.id == Feedback.turn_id)
            .where(turn_scope).group_by(Feedback.rating)
        ).all())
        by_partner = _ranked(session.execute(
            select(TurnReferral.partner, func.count(TurnReferral.id)).where(referral_scope).group_by(TurnReferral.partner)
        ).all())
        by_theme = _ranked((theme or NO_THEME, n) for theme, n in session.execute(
            select(TurnTheme.theme, func.count(TurnReferral.id)).select_from(TurnReferral)
            .outerjoin(TurnTheme, TurnTheme.turn_id == TurnReferral.turn_id).where(referral_scope).group_by(TurnTheme.theme)
        ))
        per_conversation = (  # counted per conversation first: half the time of a row-by-row join on SQLite
            select(TurnReferral.conversation_id, func.count(TurnReferral.id).label("referrals")).where(referral_scope)
            .group_by(TurnReferral.conversation_id).subquery()
        )
        by_departement = _ranked((code or "?", int(n)) for code, n in session.execute(
            select(Conversation.departement_code, func.sum(per_conversation.c.referrals))
            .join(per_conversation, per_conversation.c.conversation_id == Conversation.id)
            .group_by(Conversation.departement_code)
        ))
        days = session.execute(
            select(TurnReferral.day, TurnReferral.partner, func.count(TurnReferral.id)).where(referral_scope)
            .group_by(TurnReferral.day, TurnReferral.partner)
        ).all()
        names = _departement_names(session, [code for code, _ in by_departement if code != "?"])
    series: dict[str, Counter] = defaultdict(Counter)
    for when, partner, count in days:
        series[_period(when, granularity)][partner] += count
    labels = {**theme_labels, NO_THEME: NO_THEME_LABEL}
    return {
        "granularity": granularity,
        "totals": {"conversations": conversations, "messages": messages, "referrals": sum(n for _, n in by_partner),
                   "unmet": unmet, "feedback_up": ratings.get("up", 0), "feedback_down": ratings.get("down", 0)},
        "by_partner": [{"key": k, "label": k, "count": n} for k, n in by_partner],
        "by_theme": [{"key": k, "label": labels.get(k, k), "count": n} for k, n in by_theme],
        "by_departement": [{"key": k, "label": _departement_label(None if k == "?" else k, names.get(k)), "count": n}
                           for k, n in by_departement],
        "series": [{"period": p, "counts": dict(series[p])} for p in sorted(series)],
    }


def unmet_needs(db: Database, filters: Filters, theme_labels: dict[str, str]) -> dict:
    """Questions of the filtered conversations that got no eligible offer or a 👎, selected in SQL
    and grouped by the turn's first theme (« sans-theme » when none) and département.

    Returns {total, groups: [{theme, theme_label, departement (None when unknown),
    departement_label, count, questions: [{conversation_id, message_id, message, first_message,
    reasons, created_at, collectivity}]}]}, largest group first; questions newest conversation first."""
    first, theme = aliased(Turn), aliased(TurnTheme)
    scope = _scoped(Turn.conversation_id, filters)
    rows = (
        select(Turn.id, Turn.conversation_id, Turn.number, Turn.message, Turn.kind, Turn.created_at,
               first.message.label("first_message"), theme.theme, Conversation.departement_code,
               Conversation.profile["name"].as_string().label("collectivity"),
               Conversation.profile["departement_name"].as_string().label("departement_name"))
        .join(Conversation, Conversation.id == Turn.conversation_id)
        .outerjoin(first, and_(first.conversation_id == Turn.conversation_id, first.number == 1))  # numbers are 1..n
        .outerjoin(theme, and_(theme.turn_id == Turn.id, theme.position == 0))
        .where(scope, _unmet_turn())
        .order_by(Conversation.updated_at.desc(), Conversation.id, Turn.number)
    )
    down = (
        select(Feedback.turn_id, Feedback.reason).join(Turn, Turn.id == Feedback.turn_id)
        .where(Feedback.rating == "down", scope).order_by(Feedback.id)
    )
    labels = {**theme_labels, NO_THEME: NO_THEME_LABEL}
    with db.session() as session:
        down_reasons: dict[int, list[str | None]] = defaultdict(list)
        for turn_id, reason in session.execute(down):
            down_reasons[turn_id].append(reason)
        groups: dict[tuple[str, str | None], dict] = {}
        for row in session.execute(rows):
            key = (row.theme or NO_THEME, row.departement_code)
            group = groups.setdefault(key, {
                "theme": key[0], "theme_label": labels.get(key[0], key[0]), "departement": row.departement_code,
                "departement_label": _departement_label(row.departement_code, row.departement_name), "count": 0, "questions": [],
            })
            group["count"] += 1
            group["questions"].append({"conversation_id": row.conversation_id, "message_id": row.number, "message": row.message,
                                       "first_message": row.first_message or row.message,
                                       "reasons": _reasons(row.kind, down_reasons[row.id]), "created_at": _iso(row.created_at),
                                       "collectivity": row.collectivity})
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["theme_label"], g["departement_label"]))
    return {"total": sum(g["count"] for g in ordered), "groups": ordered}
