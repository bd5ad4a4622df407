"""The agents' console at scale: generate N synthetic conversations in a fresh SQLite file, then time
the console's queries and print the figures (no assertion: speed is printed, not tested).

    .venv/bin/python -m evals.console_load --conversations 100000

Each conversation has one or two turns with a referral from a fixed list of partners, a theme, a
département, and one conversation in ten has a 👎. Nothing is copied from real users.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import tempfile
import time
from pathlib import Path

from assistant import console
from assistant.store import (
    Conversation, Database, Feedback, Turn, TurnReferral, TurnTheme, referral_rows, search_text, theme_rows,
)

PARTNERS = ["anct", "ademe", "cerema", "anru", "anah", "banque-des-territoires"]
THEMES = ["renovation-energetique", "eclairage-public", "mobilite", "eau-assainissement", "friches"]
DEPARTEMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"]


def generate(db: Database, count: int, seed: int = 0, batch: int = 5000) -> None:
    """Insert `count` conversations (and their turns, per-turn rows and 👎) in batches, the way
    Database.save_turn would store them."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1)
    rows: dict[type, list[dict]] = {table: [] for table in (Conversation, Turn, TurnReferral, TurnTheme, Feedback)}
    turn_id = 0
    for n in range(count):
        when = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 330))
        departement = rng.choice(DEPARTEMENTS)
        conversation = {"id": f"conv{n:08d}-synthetique-generee", "created_at": when, "updated_at": when,
                        "profile": {"name": f"Commune {n}", "departement_name": f"Département {departement}"},
                        "state": {}, "departement_code": departement, "region_code": "84", "review_status": "pending"}
        messages = []
        for number in range(1, rng.choice((1, 2)) + 1):
            turn_id += 1
            partner = rng.choice(PARTNERS)
            turn = {"id": turn_id, "conversation_id": conversation["id"], "number": number, "created_at": when,
                    "message": f"Question synthétique {n} sur la rénovation", "answer": "Réponse.",
                    "kind": "answer", "generator": "grounded",
                    "referrals": [{"offer_id": f"{partner}-offre", "title": "Offre", "partner": partner}],
                    "retrieved": [], "profile": {}, "themes": [rng.choice(THEMES)], "usage": {}, "clarification": None}
            rows[Turn].append(turn)
            messages.append(turn["message"])
            keys = {"turn_id": turn_id, "conversation_id": conversation["id"]}
            rows[TurnReferral] += [{**keys, "day": when.date(), **r} for r in referral_rows(turn["referrals"])]
            rows[TurnTheme] += [{**keys, **t} for t in theme_rows(turn["themes"])]
            if rng.random() < 0.1:
                rows[Feedback].append({"turn_id": turn_id, "created_at": when, "rating": "down", "reason": "autre", "comment": None})
        rows[Conversation].append({**conversation, "search_text": search_text(conversation["id"], conversation["profile"], messages)})
        if len(rows[Conversation]) == batch or n == count - 1:
            with db.engine.begin() as connection:
                for table, values in rows.items():  # parents first: conversations, turns, then their rows
                    if values:
                        connection.execute(table.__table__.insert(), values)
                    values.clear()


def timed(label: str, call) -> tuple[str, float]:
    started = time.perf_counter()
    call()
    return label, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="Console queries over N synthetic conversations.")
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'console.db'}")
        db.create_schema()
        started = time.perf_counter()
        generate(db, args.conversations)
        print(f"{args.conversations} conversations générées en {time.perf_counter() - started:.1f} s "
              f"(mémoire du processus : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} Mo)")
        themes = {t: t for t in THEMES}
        rows = [
            timed("liste, page 1 (sans filtre)", lambda: console.list_conversations(db, console.Filters(), 0, 25)),
            timed("liste, page 40 (sans filtre)", lambda: console.list_conversations(db, console.Filters(), 1000, 25)),
            timed("liste, département 15", lambda: console.list_conversations(db, console.Filters(departement="15"), 0, 25)),
            timed("liste, partenaire anah", lambda: console.list_conversations(db, console.Filters(partner="anah"), 0, 25)),
            timed("liste, thème mobilite", lambda: console.list_conversations(db, console.Filters(theme="mobilite"), 0, 25)),
            timed("liste, avis négatif", lambda: console.list_conversations(db, console.Filters(feedback="down"), 0, 25)),
            timed("liste, sans avis, page 40", lambda: console.list_conversations(db, console.Filters(feedback="none"), 1000, 25)),
            timed("liste, texte « commune 4242 »", lambda: console.list_conversations(db, console.Filters(q="commune 4242"), 0, 25)),
            timed("liste, besoins non couverts", lambda: console.list_conversations(db, console.Filters(unmet=True), 0, 25)),
            timed("statistiques (semaine)", lambda: console.statistics(db, console.Filters(), themes, "week")),
            timed("statistiques, partenaire anah", lambda: console.statistics(db, console.Filters(partner="anah"), themes, "week")),
            timed("besoins non couverts", lambda: console.unmet_needs(db, console.Filters(), themes)),
            timed("export CSV, département 15", lambda: console.csv_export(db, console.Filters(departement="15"))),
        ]
        print(f"{'requête':34} {'secondes':>9}")
        for label, seconds in rows:
            print(f"{label:34} {seconds:9.3f}")
        print(f"mémoire maximale du processus : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} Mo")


if __name__ == "__main__":
    main()
