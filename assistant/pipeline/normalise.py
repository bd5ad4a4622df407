"""Stage 1, normalise: the message as every later stage reads it.

One pass at the door, so that the same question typed on another keyboard, pasted from a word
processor or decomposed (NFD) reads the same to every stage:
  - Unicode NFKC: composed accents (« é » typed as e + U+0301 becomes U+00E9), compatibility
    forms spelled out (ligature « ﬁ » -> « fi », « m² » -> « m2 », full-width letters);
  - typographic apostrophes and quotes as ASCII (’ ‘ ʼ -> ', “ ” „ -> "), French « » kept;
  - every space (no-break U+00A0, narrow U+202F, thin…) as a plain space, invisible characters
    (zero-width, soft hyphen, BOM) removed, runs of spaces collapsed; line breaks kept (they end a
    sentence for the territory resolver).
Case and accents are kept here (a capital is a place cue, « » marks a quoted name): matching
folds them itself (assistant.text.fold), and retrieval reads one canonical spelling
(assistant.text.Lexicon.canonical).
"""

from __future__ import annotations

import re
import unicodedata

TYPOGRAPHY = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "\u00b4": "'", "\u201b": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-",
        "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
    }
)
SPACES = re.compile(r"[^\S\n]+")
# A character TYPOGRAPHY rewrites: most messages hold none, and translating reads every character.
TYPOGRAPHIC = re.compile("[" + "".join(re.escape(chr(c)) for c in TYPOGRAPHY) + "]")


def normalise(message: str) -> str:
    """The message every stage reads (str -> str): NFKC, ASCII apostrophes and quotes, plain spaces.

    Example: "L’e\\u0301cole\\u00a0: « Fonds vert »" -> "L'école : « Fonds vert »". Idempotent.
    """
    text = unicodedata.normalize("NFKC", message)
    if TYPOGRAPHIC.search(text):
        text = text.translate(TYPOGRAPHY)
    return "\n".join(SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()
