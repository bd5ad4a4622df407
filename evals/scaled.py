"""A corpus N times the size of the real one, for the scale benchmark and the scale test.

Copy k of a card keeps its text (so passages, lengths and retrieval costs stay realistic) under a new
id (`<id>-copie<k>`) and a distinguishable title (`<title> (copie k)`), without aliases so that names
stay unique. Copy 1 is the real card, unchanged. Partners, themes, contacts and territories are
copied as they are.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import yaml


def build_scaled_corpus(source: Path, target: Path, factor: int) -> int:
    """Write the scaled corpus into target (created); returns the number of offer cards written."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name == "offers":
            continue
        destination = target / entry.name
        if entry.is_dir():
            shutil.copytree(entry, destination)
        else:
            shutil.copy2(entry, destination)
    written = 0
    for card_path in sorted((source / "offers").glob("*/*.yaml")):
        folder = target / "offers" / card_path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(card_path, folder / card_path.name)
        written += 1
        if factor <= 1:
            continue
        card = yaml.load(card_path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for copy in range(2, factor + 1):
            card_copy = {**card, "id": f"{card['id']}-copie{copy}", "title": f"{card['title']} (copie {copy})", "aliases": []}
            card_copy.pop("outdated_premises", None)
            text = yaml.dump(card_copy, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
            (folder / f"{card_copy['id']}.yaml").write_text(text, encoding="utf-8")
            written += 1
    return written


def edit_one_card(corpus: Path) -> Path:
    """Change one card's summary (the first card in path order) as an editor would; returns its path."""
    path = sorted((corpus / "offers").glob("*/*.yaml"))[0]
    card = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    card["summary"] = card["summary"] + " (modifié pour le banc d'essai)"
    path.write_text(yaml.dump(card, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class HashEmbeddings:
    """A cheap stand-in embedder (a hash of the text spread over `dimensions` unit-norm floats) to index
    tens of thousands of passages fast.

    Default: 16 dimensions under its own signature (« hash-16 »): the scale figures of the service's
    mechanics without the encoder (`bench --embedder hash`, the server started with it too).
    `dimensions` and `signature` of the configured encoder (`bench --embedder standin`): an index the
    real `aiguillage serve` accepts as its own (same configuration signature, vectors of the same size),
    so that its start-up — model load included — is measured at scale without encoding every passage;
    what the start reads does not depend on the vectors' values, but answers from such an index mean
    nothing (its vectors are not the encoder's)."""

    def __init__(self, dimensions: int = 16, signature: str = "hash-16"):
        self.dimensions = dimensions
        self.signature = signature

    def _vector(self, text: str) -> list[float]:
        data = text.encode()
        digest = hashlib.sha256(data).digest() if self.dimensions <= 32 else hashlib.shake_256(data).digest(self.dimensions)
        raw = np.frombuffer(digest[: self.dimensions], dtype=np.uint8).astype(np.float32) - 127.5
        return (raw / np.linalg.norm(raw)).tolist()

    def embed_documents(self, texts):
        return [self._vector(t) for t in texts]

    def embed_query(self, text):
        return self._vector(text)


def serve_with_hash_embeddings(port: int) -> None:
    """The app `aiguillage serve` runs (one worker), with HashEmbeddings instead of the configured
    encoder; settings from the environment. For `--embedder hash` only."""
    import uvicorn

    from api.app import create_app
    from assistant.config import get_settings
    from assistant.service import Assistant

    settings = get_settings()
    uvicorn.run(create_app(settings, Assistant(settings, embeddings=HashEmbeddings())),
                host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["serve-hash"]:  # the server of `bench --embedder hash` (evals.bench._start_server)
        serve_with_hash_embeddings(int(sys.argv[2]))
