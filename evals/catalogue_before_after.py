"""What the catalogue adds to answers: ten questions with a territory, before and after a sync.

Builds a fresh data directory (curated index), answers the ten questions, then synchronises the
catalogue from the fake Aides-territoires server on 127.0.0.1 (the 274 public aids of the fixture,
evals/fake_aides_territoires.py), indexes it and answers again. Prints, per question, the curated
offers (unchanged) and the catalogue aids added (with their eligibility) or hidden behind a card.
No network. Run: `python -m evals.catalogue_before_after [--out FILE.json]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
# (question, INSEE code of the asking commune): themes the fixture's aids cover, territories they name.
QUESTIONS = [
    ("Quelle aide pour l'éclairage public de la commune ?", "14118"),  # Caen, Calvados
    ("Ma commune veut aménager une piste cyclable", "56121"),  # Lorient, Morbihan
    ("Nous voulons rénover l'école communale", "77288"),  # Melun, Seine-et-Marne
    ("Réhabiliter une friche en centre-bourg", "11069"),  # Carcassonne, Aude
    ("Créer une maison de santé dans notre commune", "26362"),  # Valence, Drôme
    ("Restaurer le patrimoine bâti de la commune", "10387"),  # Troyes, Aube
    ("Installer des panneaux photovoltaïques sur la mairie", "14118"),
    ("Développer la lecture publique et la médiathèque", "77288"),
    ("Lutter contre les logements vacants du centre-ville", "81004"),  # Albi, Tarn
    ("Rénover énergétiquement nos bâtiments publics", "59350"),  # Lille, Nord
]


def answer_all(assistant) -> list[dict]:
    rows = []
    for question, insee in QUESTIONS:
        result = assistant.chat(question, profile=assistant.profile_for(None, insee))
        found = result.catalogue
        rows.append({
            "question": question, "insee": insee,
            "curated": [r.offer.id for r in result.referrals],
            "added": [{"title": h.entry.name, "perimeter": h.entry.perimeter_label, "eligibility": h.verdict.status,
                       "relevance": round(h.similarity, 3)} for h in found.hits] if found else [],
            "hidden": found.hidden if found else [],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the before/after rows as JSON")
    args = parser.parse_args()

    from assistant.config import Settings
    from assistant.embeddings import UniversalSentenceEncoderEmbeddings
    from assistant.service import Assistant
    from evals.catalogue_pertinence import synced_catalogue
    from ingest.indexer import ingest

    embeddings = UniversalSentenceEncoderEmbeddings()
    with tempfile.TemporaryDirectory(prefix="aiguillage-catalogue-") as tmp:
        settings = Settings(data_dir=Path(tmp), corpus_dir=ROOT / "corpus", _env_file=None)
        ingest(settings, embeddings, progress=False)
        before = answer_all(Assistant(settings, embeddings=embeddings))
        print(f"Catalogue synchronisé et indexé : {len(synced_catalogue(settings, embeddings).entries)} aides.")
        after = answer_all(Assistant(settings, embeddings=embeddings))

    questions_with_aids = 0
    for old, new in zip(before, after):
        print(f"\n« {new['question']} » (INSEE {new['insee']})")
        same = "inchangées" if old["curated"] == new["curated"] else f"AVANT {old['curated']}"
        print(f"  fiches ({same}) : {', '.join(new['curated']) or 'aucune'}")
        for aid in new["added"]:
            print(f"  + {aid['title']} — {aid['perimeter']} — {aid['eligibility']} ({aid['relevance']})")
        for hidden in new["hidden"]:
            print(f"  = masquée : {hidden['title']} -> fiche {hidden['offer_id']} ({hidden['reason']})")
        questions_with_aids += bool(new["added"])
    added = sum(len(r["added"]) for r in after)
    print(f"\n{questions_with_aids}/{len(after)} questions reçoivent des aides du catalogue ({added} aides), "
          f"{sum(len(r['hidden']) for r in after)} masquée(s) derrière une fiche ; "
          f"fiches inchangées pour {sum(o['curated'] == n['curated'] for o, n in zip(before, after))}/{len(after)}.")
    if args.out:
        args.out.write_text(json.dumps({"before": before, "after": after}, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
