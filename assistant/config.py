"""The one settings object: every knob an operator may turn, read from AIGUILLAGE_* variables or .env."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGUILLAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Index, database and snapshots.")
    corpus_dir: Path = Field(Path("corpus"), description="Offer cards, partners, contacts, territories.")

    embedding_backend: Literal["use", "sentence-transformers", "openai"] = Field(
        "use", description="use = bundled multilingual Universal Sentence Encoder (offline)."
    )
    embedding_model: str | None = Field(
        None, description="Model name or local path (sentence-transformers) or model id (openai)."
    )
    embedding_base_url: str | None = Field(None, description="OpenAI-compatible embeddings endpoint.")
    embedding_api_key: str | None = None
    embedding_query_prompt: str | None = Field(
        None, description="Prefix for queries, e.g. 'query: ' for e5 models (sentence-transformers)."
    )
    embedding_passage_prompt: str | None = Field(None, description="Prefix for passages, e.g. 'passage: '.")

    chroma_url: str | None = Field(None, description="http://host:port of a Chroma server; embedded if unset.")
    collection_prefix: str = "aiguillage"

    retrieval_depth: int = Field(40, ge=5, le=500, description="Passages taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    max_referrals: int = Field(3, ge=1, le=10)

    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite file in data_dir if unset.")
    conversation_retention_days: int = Field(180, ge=1)
    max_message_chars: int = Field(2000, ge=50)

    llm_base_url: str | None = Field(None, description="OpenAI-compatible chat endpoint; grounded answers if unset.")
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 20.0
    llm_max_retries: int = 2
    llm_max_concurrency: int = 4

    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to embed the widget.")
    rate_limit: str = Field("30/minute", description="Per-IP limit on public endpoints (slowapi syntax).")
    rate_limit_storage: str = Field(
        "memory://", description="Where rate-limit counters live: memory:// (per process) or redis://host:port/db (shared)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IPs or CIDR) whose X-Forwarded-For is believed; the client is the right-most untrusted hop.",
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted (413 beyond).")
    frame_ancestors: list[str] = Field(
        default_factory=list, description="Origins allowed to frame the chat page (CSP frame-ancestors); none if empty."
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes started by `aiguillage serve`.")
    worker_threads: int | None = Field(
        None, ge=1, le=64,
        description="Threads of each worker that run the synchronous request handlers (Starlette's default: 40); "
        "unset: Settings.handler_threads decides.",
    )

    aides_territoires_token: str | None = Field(
        None, description="Aides-territoires API token (exchanged for a JWT by `aiguillage catalogue sync`)."
    )
    aides_territoires_url: str = Field(
        "https://aides-territoires.beta.gouv.fr", description="Base URL of the Aides-territoires API."
    )

    def handler_threads(self, workers: int | None = None, cpus: int | None = None) -> int:
        """Threads per worker for the synchronous handlers (a chat turn…): `worker_threads` when set; else,
        when a turn computes locally (grounded generator, local encoder), the cores per worker, at least 1:
        more threads only take turns at the interpreter lock (python -m evals.load, 16 clients, 15 s, 2 cores,
        quiet machine: 2 workers of 1 thread 308-320/s, of 2 threads 295-297/s, of 4 threads 280/s; 1 worker
        of 2 threads 191-199/s, of 4 threads 185-190/s, of 1 thread 153/s); else (an LLM or an embedding
        API: a turn mostly waits on the network) Starlette's 40.
        workers: the worker processes (default `workers`); cpus: default os.cpu_count()."""
        import os

        if self.worker_threads is not None:
            return self.worker_threads
        if self.llm_base_url or self.embedding_backend == "openai":
            return 40
        return max(1, (cpus or os.cpu_count() or 1) // (workers or self.workers))

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'aiguillage.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
