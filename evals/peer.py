"""The peer the issue measures us against: a minimal, naive LangChain RAG over the same index and embedder.

What a LangChain tutorial builds: a Chroma vector store (langchain-chroma) on the assistant's own
collection and embedder, a retriever taking the 4 nearest passages, and an answer made of those
passages (no LLM, as our grounded generator). No BM25, no ranking, no eligibility, no storage: the
floor of the work one turn must do, used by `aiguillage bench --peer` to compare CPU per request.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.vectorstore import chroma_client, langchain_store

TOP_K = 4


class NaiveLangChainRag:
    def __init__(self, settings: Settings, embeddings: Embeddings, collection: str):
        self.retriever = langchain_store(chroma_client(settings), collection, embeddings).as_retriever(
            search_kwargs={"k": TOP_K}
        )

    def chat(self, question: str) -> str:
        """The answer: the retrieved passages, best first, with the offer each comes from."""
        documents = self.retriever.invoke(question)
        return "\n\n".join(f"[{d.metadata.get('offer_id')}] {d.page_content}" for d in documents)
