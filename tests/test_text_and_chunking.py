from assistant.text import analyze, fold, match_terms
from ingest.chunking import chunk_offer, sections
from ingest.corpus import load_corpus
from tests.conftest import CORPUS


def test_french_stemming_meets_verb_and_noun():
    assert analyze("rénovation")[0] == analyze("rénover")[0]
    assert analyze("écoles")[0] == analyze("ecole")[0]


def test_accents_are_folded_after_stemming():
    assert analyze("éclairage public") == analyze("eclairage public")
    assert fold("Cœur de Ville") == "coeur de ville"


def test_stop_words_are_dropped():
    assert analyze("Quelle est la aide pour les communes ?") == analyze("aide communes")


def test_sections_split_on_level_two_headings():
    found = sections("Intro.\n\n## Pour qui\nLes communes.\n\n## Comment\nEn ligne.")
    assert found == [("", "Intro."), ("Pour qui", "Les communes."), ("Comment", "En ligne.")]


def test_every_offer_has_a_card_passage_and_section_passages():
    corpus = load_corpus(CORPUS)
    themes = corpus.themes.by_id()
    for offer in corpus.offers.values():
        passages = chunk_offer(offer, themes)
        assert passages[0].kind == "card" and offer.title in passages[0].text
        assert len(passages) >= 2, offer.id
        assert all(p.text.startswith(offer.title) for p in passages[1:])
        assert len({p.id for p in passages}) == len(passages)


def test_lexicon_reads_a_word_in_the_corpus_spelling_however_typed():
    from assistant.text import Lexicon

    lexicon = Lexicon(["l'école de la DETR", "une école", "Ecole"])
    for typed in ["L'ÉCOLE DE LA DETR", "l'ecole de la detr", "L'e\u0301cole de la DETR"]:
        assert lexicon.canonical(typed) == "L'école de la DETR"
    assert lexicon.canonical("Laveissière. ok") == lexicon.canonical("LAVEISSIERE. OK") == "Laveissiere. Ok"
    assert match_terms("mobilité") == match_terms("MOBILITE")
    # Read again and in turns (a turn reads its query three times): each text keeps its own spelling.
    for typed, spelled in [("ecole", "École"), ("ecole", "École"), ("detr ?", "DETR ?"), ("ecole", "École")]:
        assert lexicon.canonical(typed) == spelled


def test_every_theme_phrase_is_detected_and_a_part_of_it_only_as_its_words_allow():
    """Generated from corpus/themes.yaml: a sentence carrying a theme's label or synonym detects the
    theme; a sentence carrying the phrase without its last word, or its words in reverse order,
    detects the theme only when another of its phrases is there whole (consecutive terms, in order)."""
    from assistant.profile import detect_themes
    from ingest.corpus import load_themes

    vocabulary = load_themes(CORPUS)
    every = len(vocabulary.themes)

    def said(sentence: str, theme) -> bool:  # the definition: a phrase's terms, consecutive, among the sentence's
        joined = f" {' '.join(match_terms(sentence))} "
        return any(terms and f" {' '.join(terms)} " in joined
                   for terms in (match_terms(p) for p in [theme.label, *theme.synonyms]))

    checked = partial = 0
    for theme in vocabulary.themes:
        for phrase in [theme.label, *theme.synonyms]:
            if not match_terms(phrase):
                continue
            sentence = f"Notre commune voudrait {phrase} cette année"
            assert theme.id in detect_themes(sentence, vocabulary, limit=every), (theme.id, phrase)
            checked += 1
            words = phrase.split()
            for part in (" ".join(words[:-1]), " ".join(reversed(words))) if len(match_terms(phrase)) > 1 else ():
                sentence = f"Notre commune voudrait {part} cette année"
                found = theme.id in detect_themes(sentence, vocabulary, limit=every)
                assert found == said(sentence, theme), (theme.id, phrase, part)
                partial += not found
    assert checked > 300 and partial > 50  # the table's phrases, and many parts that are not one
