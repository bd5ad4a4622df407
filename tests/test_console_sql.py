"""The console's filters, statistics and unmet needs, computed in SQL, give the answers an agent
expects — checked against counts made here in plain Python from the conversations as they were
written, on a real SQLite file and on PostgreSQL when AIGUILLAGE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from assistant import console
from assistant.store import MIGRATIONS_DIR, Database

PARTNERS = ["anct", "ademe", "cerema", "banque-des-territoires"]
THEMES = ["renovation-energetique", "eclairage-public", "mobilite"]
LABELS = {"renovation-energetique": "Rénovation énergétique", "eclairage-public": "Éclairage public", "mobilite": "Mobilité"}
PLACES = [("15", "84", "Cantal"), ("2A", "94", "Corse-du-Sud"), (None, None, None)]
NAMES = ["Saint-Étienne-de-Lugdarès", "Aurillac", None, "Œuilly"]
KINDS = ["answer", "answer", "answer", "no_match", "clarification", "refusal"]


@dataclass
class Written:
    """A turn as the test wrote it: what the console's answers are checked against."""

    number: int
    created_at: dt.datetime
    message: str
    kind: str
    partners: list[str]
    themes: list[str]
    ratings: list[tuple[str, str | None]] = field(default_factory=list)  # (rating, reason)


@dataclass
class Spec:
    id: str
    created_at: dt.datetime
    departement: str | None
    departement_name: str | None
    region: str | None
    name: str | None
    turns: list[Written]
    review: str = "pending"

    def unmet(self, turn: Written) -> list[str]:
        reasons = ["aucune offre éligible"] if turn.kind == "no_match" else []
        return reasons + ["avis négatif" + (f" : {console.REASONS[r]}" if r else "") for rating, r in turn.ratings if rating == "down"]


def fill(db: Database, count: int = 48, seed: int = 7) -> list[Spec]:
    """`count` conversations written through Database.save_turn, record_feedback and add_review:
    0 to 3 referrals (a partner may repeat), 0 to 2 themes, no_match and clarification turns,
    unknown départements, accented names, 👍/👎 with reasons, dates over three months."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 3, 1, 9)
    specs = []
    for n in range(count):
        departement, region, departement_name = rng.choice(PLACES)
        created = start + dt.timedelta(days=rng.randrange(0, 90), minutes=n)
        spec = Spec(f"conversation-console-{n:04d}", created, departement, departement_name, region, rng.choice(NAMES), [])
        for number in range(1, rng.randint(1, 3) + 1):
            kind = rng.choice(KINDS)
            partners = [rng.choice(PARTNERS) for _ in range(rng.randint(1, 3))] if kind == "answer" else []
            themes = rng.sample(THEMES, rng.randint(0, 2))
            message = rng.choice(["Rénover l'école de la commune", "Éclairage public économe", "Une navette pour les aînés"])
            when = created + dt.timedelta(days=number - 1, hours=number)
            spec.turns.append(Written(number, when, f"{message} (n° {n}-{number})", kind, partners, themes))
            profile = {"name": spec.name, "departement_name": departement_name}
            db.save_turn(spec.id, {"created_at": created, "profile": profile, "state": {}, "departement_code": departement,
                                   "region_code": region}, {
                "created_at": when, "message": spec.turns[-1].message, "answer": "Réponse.", "kind": kind,
                "referrals": [{"offer_id": f"{p}-offre-{i}", "title": "Offre", "partner": p} for i, p in enumerate(partners)],
                "retrieved": [], "profile": profile, "themes": themes, "usage": {},
            })
        for turn in spec.turns:
            for _ in range(rng.choice([0, 0, 0, 1, 2])):
                rating, reason = rng.choice([("up", None), ("down", None), ("down", "mauvais-territoire"), ("down", "autre")])
                console.record_feedback(db, spec.id, turn.number, rating, reason, None)
                turn.ratings.append((rating, reason))
        if rng.random() < 0.2:
            console.add_review(db, spec.id, None, "validated", None, None, None, "Agent", [])
            spec.review = "validated"
        specs.append(spec)
    return specs


FILTERS = [
    console.Filters(),
    console.Filters(partner="ademe"),
    console.Filters(partner="inconnu"),
    console.Filters(theme="mobilite"),
    console.Filters(feedback="up"),
    console.Filters(feedback="down"),
    console.Filters(feedback="none"),
    console.Filters(feedback="any"),
    console.Filters(unmet=True),
    console.Filters(unmet=False),
    console.Filters(q="ECOLE"),  # folded: « école », any case
    console.Filters(q="saint-etienne"),
    console.Filters(q="l_ecole"),  # LIKE wildcards are plain characters: « _ » is not the apostrophe
    console.Filters(q="%navette"),
    console.Filters(q="conversation-console-0001"),
    console.Filters(departement="15", theme="eclairage-public", feedback="down"),
    console.Filters(date_from=dt.date(2026, 4, 1), date_to=dt.date(2026, 4, 30), partner="anct"),
    console.Filters(review="validated", unmet=True),
    console.Filters(region="94", q="navette"),
]


def selected(spec: Spec, f: console.Filters) -> bool:
    """The console's documented filter semantics, applied to what was written."""
    from assistant.text import fold

    ratings = Counter(rating for t in spec.turns for rating, _ in t.ratings)
    haystack = fold(" ".join([spec.id, spec.name or ""] + [t.message for t in spec.turns]))
    checks = [
        f.date_from is None or spec.created_at.date() >= f.date_from,
        f.date_to is None or spec.created_at.date() <= f.date_to,
        f.departement is None or spec.departement == f.departement,
        f.region is None or spec.region == f.region,
        f.review is None or spec.review == f.review,
        f.partner is None or any(f.partner in t.partners for t in spec.turns),
        f.theme is None or any(f.theme in t.themes for t in spec.turns),
        f.feedback is None or {"up": ratings["up"] > 0, "down": ratings["down"] > 0, "any": bool(ratings),
                               "none": not ratings}[f.feedback],
        f.unmet is None or f.unmet == any(spec.unmet(t) for t in spec.turns),
        f.q is None or fold(f.q) in haystack,
    ]
    return all(checks)


def _week(moment: dt.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-S{week:02d}"


def expected_statistics(specs: list[Spec], granularity: str) -> dict:
    period = {"day": lambda m: m.date().isoformat(), "week": _week, "month": lambda m: m.strftime("%Y-%m")}[granularity]
    totals, partners, themes, departements, series = Counter(), Counter(), Counter(), Counter(), {}
    for spec in specs:
        totals["conversations"] += 1
        for t in spec.turns:
            totals["messages"] += 1
            totals["unmet"] += bool(spec.unmet(t))
            totals.update(f"feedback_{rating}" for rating, _ in t.ratings)
            for partner in t.partners:
                totals["referrals"] += 1
                partners[partner] += 1
                themes.update(t.themes or [console.NO_THEME])
                departements[spec.departement or "?"] += 1
                series.setdefault(period(t.created_at), Counter())[partner] += 1
    return {"totals": {k: totals[k] for k in ("conversations", "messages", "referrals", "unmet", "feedback_up", "feedback_down")},
            "by_partner": dict(partners), "by_theme": dict(themes), "by_departement": dict(departements),
            "series": {p: dict(c) for p, c in series.items()}}


def ranked_counts(rows: list[dict]) -> dict:
    counts = [row["count"] for row in rows]
    assert counts == sorted(counts, reverse=True), "most frequent first"
    return {row["key"]: row["count"] for row in rows}


def check_console(db: Database, specs: list[Spec]) -> None:
    by_id = {s.id: s for s in specs}
    for f in FILTERS:
        wanted = {s.id for s in specs if selected(s, f)}
        listed = [item for offset in range(0, len(specs) + 7, 7) for item in console.list_conversations(db, f, offset, 7)["items"]]
        assert console.list_conversations(db, f, 0, 1)["total"] == len(wanted), f
        assert [i["id"] for i in listed] == [i["id"] for i in console.list_conversations(db, f, 0, 200)["items"]], f
        assert {i["id"] for i in listed} == wanted, f
        updated = [i["updated_at"] for i in listed]
        assert updated == sorted(updated, reverse=True), "newest first"
        for item in listed:  # the page's summaries still come from the turns
            spec = by_id[item["id"]]
            assert item["partners"] == sorted({p for t in spec.turns for p in t.partners})
            assert item["unmet"] == any(spec.unmet(t) for t in spec.turns)
        csv_ids = [line.split(";")[0] for line in console.csv_export(db, f).lstrip("\ufeff").splitlines()[1:]]
        assert csv_ids == [i["id"] for i in listed], f

        chosen = [s for s in specs if s.id in wanted]
        for granularity in console.GRANULARITIES:
            stats = console.statistics(db, f, LABELS, granularity)
            expected = expected_statistics(chosen, granularity)
            assert stats["totals"] == expected["totals"], (f, granularity)
            assert ranked_counts(stats["by_partner"]) == expected["by_partner"], f
            assert ranked_counts(stats["by_theme"]) == expected["by_theme"], f
            assert ranked_counts(stats["by_departement"]) == expected["by_departement"], f
            assert {s["period"]: s["counts"] for s in stats["series"]} == expected["series"], (f, granularity)
            assert [s["period"] for s in stats["series"]] == sorted(expected["series"])
        labels = {row["key"]: row["label"] for row in console.statistics(db, f, LABELS)["by_departement"]}
        assert all(labels[k] == {"15": "15 — Cantal", "2A": "2A — Corse-du-Sud", "?": console.UNKNOWN_DEPARTEMENT}[k] for k in labels)

        unmet = console.unmet_needs(db, f, LABELS)
        questions = {(q["conversation_id"], q["message_id"]): (g["theme"], g["departement"], g["departement_label"], q)
                     for g in unmet["groups"] for q in g["questions"]}
        expected_questions = {(s.id, t.number): (s, t) for s in chosen for t in s.turns if s.unmet(t)}
        assert set(questions) == set(expected_questions) and unmet["total"] == len(expected_questions), f
        for key, (spec, turn) in expected_questions.items():
            theme, departement, label, question = questions[key]
            assert theme == (turn.themes or [console.NO_THEME])[0] and departement == spec.departement
            assert label == (f"{spec.departement} — {spec.departement_name}" if spec.departement else console.UNKNOWN_DEPARTEMENT)
            assert question["reasons"] == spec.unmet(turn) and question["message"] == turn.message
            assert question["first_message"] == spec.turns[0].message and question["collectivity"] == spec.name
        assert [g["count"] for g in unmet["groups"]] == sorted((g["count"] for g in unmet["groups"]), reverse=True)
        assert all(g["count"] == len(g["questions"]) for g in unmet["groups"])


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'console.db'}")
    else:
        db = Database(request.getfixturevalue("postgres_url"))
    yield db
    db.engine.dispose()


def test_filters_statistics_and_unmet_needs_in_sql(database):
    database.create_schema()
    specs = fill(database)
    assert {t.kind for s in specs for t in s.turns} >= {"no_match", "answer", "clarification"}
    assert any(not t.themes and t.partners for s in specs for t in s.turns) and any(s.departement is None for s in specs)
    check_console(database, specs)
    erased = specs.pop(0)
    console.delete_conversation(database, erased.id)  # its per-turn rows go with it
    check_console(database, specs)


def _upgrade(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_the_migration_backfills_conversations_written_before_it(database):
    """Conversations stored before the per-turn tables existed are found and counted after the upgrade."""
    _upgrade(database, "0004")
    specs: list[Spec] = []
    rng = random.Random(3)
    with database.engine.begin() as connection:
        for n in range(30):
            departement, region, departement_name = rng.choice(PLACES)
            created = dt.datetime(2026, 5, 1) + dt.timedelta(days=n)
            spec = Spec(f"ancienne-{n:03d}", created, departement, departement_name, region, rng.choice(NAMES), [])
            profile = {"name": spec.name, "departement_name": departement_name}
            connection.execute(text(
                "INSERT INTO conversations (id, created_at, updated_at, profile, state, departement_code, region_code, review_status) "
                "VALUES (:id, :c, :c, :profile, '{}', :d, :r, 'pending')"),
                {"id": spec.id, "c": created, "profile": json.dumps(profile), "d": departement, "r": region})
            for number in range(1, rng.randint(1, 3) + 1):
                kind = rng.choice(KINDS)
                partners = [rng.choice(PARTNERS) for _ in range(rng.randint(1, 2))] if kind == "answer" else []
                themes = rng.sample(THEMES, rng.randint(0, 2))
                turn = Written(number, created + dt.timedelta(hours=number), f"Réhabiliter la friche n° {n}-{number}", kind, partners, themes)
                connection.execute(text(
                    "INSERT INTO turns (conversation_id, number, created_at, message, answer, kind, generator, referrals, retrieved, "
                    "profile, themes, usage) VALUES (:c, :n, :t, :m, 'Réponse.', :k, 'grounded', :refs, '[]', '{}', :themes, '{}')"),
                    {"c": spec.id, "n": number, "t": turn.created_at, "m": turn.message, "k": kind,
                     "refs": json.dumps([{"offer_id": "x", "title": "Offre", "partner": p} for p in partners]),
                     "themes": json.dumps(themes)})
                spec.turns.append(turn)
            specs.append(spec)
    _upgrade(database, "head")
    for spec in specs[:3]:
        for turn in spec.turns:
            console.record_feedback(database, spec.id, turn.number, "down", "autre", None)
            turn.ratings.append(("down", "autre"))
    check_console(database, specs)


def test_search_text_folds_its_parts_as_the_whole_text():
    """store.search_text folds the id, the name and each message apart (the message is read from fold's
    memo); the text is the one folding them joined gives, for parts that start or end with what folding
    changes: combining accents, ligatures, capitals (final sigma), compatibility forms, a lone surrogate."""
    from itertools import product

    from assistant.store import search_text
    from assistant.text import fold

    edges = ["", "É", "e\u0301", "\u0301", "Œ", "æ", "ΟΔΟΣ", "Σ", "ﬁ", "²", "İ", "\ud800", "'", " ", "L’École"]
    for id_, name, first, last in product(["c" * 8, "Σ" + "x" * 7], edges, edges, edges):
        messages = [first + " école " + last, last + first]
        assert search_text(id_, {"name": name}, messages) == fold(" ".join([id_, name, *messages])), (name, first, last)
