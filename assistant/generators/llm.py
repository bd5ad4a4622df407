"""Answers written by an OpenAI-compatible LLM (Albert API, Mistral, vLLM, Ollama…), checked before use.

The model only phrases the answer: the referrals come from retrieval, and every answer is validated
against the cards (citations, figures, eligibility). On any failure — validation, HTTP error, timeout,
refusal, saturation — the grounded answer is returned instead, with generator "grounded" and a
machine-readable fallback_reason (see README, « Réponses générées par un LLM »).

Calls go through langchain-openai's ChatOpenAI with its own retries disabled: this module retries
429 and 5xx itself (bounded, exponential backoff with jitter, Retry-After honoured), and caps the
number of simultaneous calls to the endpoint with a semaphore.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_openai import ChatOpenAI

from assistant.answer import AnswerContext, GeneratedAnswer, GroundedGenerator, correction_blocks, stream_answer
from assistant.config import Settings
from assistant.generators.prompt import SYSTEM_PROMPT, answer_messages, rewrite_messages
from assistant.generators.validation import fallback_reason, validate
from assistant.text import fold

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
REWRITE_BUDGET_S = 3.0
STREAM_BUDGET_FACTOR = 3  # a whole streamed answer may take this many times llm_timeout_s
REWRITE_MAX_CHARS = 400
# A refusal written as text rather than signalled by the API ("Je ne peux pas vous aider…").
REFUSAL_TEXT = re.compile(
    r"\b(je ne (peux|suis pas en mesure de) (pas )?(vous )?(aider|repondre|fournir)|je refuse|desole,? (mais )?je ne peux"
    r"|i (can ?not|can't|won't) (help|assist|answer|comply))"
)


class Busy(Exception):
    """Every slot toward the LLM stayed taken for the whole timeout."""


@dataclass
class Rewrite:
    """A follow-up rewritten into a standalone question; text is the original when skipped."""

    text: str
    rewritten: bool
    reason: str | None = None  # why it was skipped: "no history", "timeout", "http 500"…
    usage: dict = field(default_factory=dict)


def chat_model(settings: Settings, timeout_s: float) -> ChatOpenAI:
    # An explicit key, even a placeholder, so that an OPENAI_API_KEY from the environment is never
    # sent to a third-party endpoint; local servers (Ollama, vLLM) ignore it.
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key or "sans-cle",
        timeout=timeout_s,
        max_retries=0,
        temperature=0.2,
        use_responses_api=False,
    )


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIStatusError):
        return f"http {exc.status_code}"
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return "connection error"
    if isinstance(exc, Busy):
        return "busy"
    return f"llm error {type(exc).__name__}"


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRYABLE_STATUS


def _rejects_stream_options(exc: BaseException) -> bool:
    """Mistral's API, for one, answers 422 to the stream_options field that asks for streamed usage."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in {400, 422}:
        return False
    return "stream_options" in f"{exc} {exc.body}"


def _usage(message: BaseMessage | None) -> dict:
    metadata = getattr(message, "usage_metadata", None) or {}
    return {k: metadata[k] for k in ("input_tokens", "output_tokens", "total_tokens") if k in metadata}


def _refused(message: BaseMessage | None, text: str) -> bool:
    if message is None:
        return False
    if message.additional_kwargs.get("refusal"):
        return True
    return message.response_metadata.get("finish_reason") == "content_filter" and not text.strip()


class LLMGenerator:
    name = "llm"

    def __init__(
        self,
        settings: Settings,
        model: BaseChatModel | None = None,
        rewriter: BaseChatModel | None = None,
        grounded: GroundedGenerator | None = None,
        backoff_s: float = BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        rewrite_budget_s: float = REWRITE_BUDGET_S,
        stream_budget_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.model = model or chat_model(settings, settings.llm_timeout_s)
        self.rewrite_budget_s = min(rewrite_budget_s, settings.llm_timeout_s)
        self.rewriter = rewriter or (model if model is not None else chat_model(settings, self.rewrite_budget_s))
        self.grounded = grounded or GroundedGenerator()
        self.stream_budget_s = stream_budget_s or STREAM_BUDGET_FACTOR * settings.llm_timeout_s
        self.max_retries = settings.llm_max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(settings.llm_max_concurrency)
        self._stream_usage = isinstance(self.model, ChatOpenAI)

    # ---- whole answers -------------------------------------------------------------------
    def generate(self, context: AnswerContext) -> GeneratedAnswer:
        if not context.referrals:
            return self.grounded.generate(context)
        usage: dict = {}
        try:
            message, attempts = self._call(lambda: self.model.invoke(answer_messages(context)), self.settings.llm_timeout_s)
        except Exception as exc:  # every LLM failure ends in the grounded answer
            return self._fallback(context, failure_reason(exc), usage)
        usage = self._usage(message, attempts)
        return self._checked(context, message.text, message, usage)

    # ---- streamed answers ----------------------------------------------------------------
    def stream(self, context: AnswerContext) -> Iterator[str | GeneratedAnswer]:
        """Text deltas from the model, then the final GeneratedAnswer (the grounded one if the streamed
        text fails validation: its text replaces what was streamed). Closing this generator closes the
        HTTP stream to the model and frees the slot."""
        if not context.referrals:
            yield from stream_answer(self.grounded, context)
            return
        if not self._slots.acquire(timeout=self.settings.llm_timeout_s):
            yield self._fallback(context, "busy", {})
            return
        parts: list[str] = []
        merged: AIMessageChunk | None = None
        attempts = 0
        iterator = None
        failure = None
        try:
            prefix = self._prefix(context)
            if prefix:
                yield prefix
            try:
                # httpx's timeout is per read: a model that keeps sending slowly is cut by this budget.
                deadline = time.monotonic() + self.stream_budget_s
                iterator, first, attempts = self._open_stream(answer_messages(context))
                chunks = [first] if first is not None else []
                for chunk in _chain(chunks, iterator):
                    merged = chunk if merged is None else merged + chunk
                    text = chunk.text
                    if text:
                        parts.append(text)
                        yield text
                    if time.monotonic() > deadline:
                        raise TimeoutError("stream budget exceeded")
            except Exception as exc:
                failure = failure_reason(exc)
        finally:
            if iterator is not None:
                iterator.close()
            self._slots.release()
        usage = self._usage(merged, attempts) if merged is not None else {}
        if failure:
            yield self._fallback(context, failure, usage)
            return
        yield self._checked(context, "".join(parts), merged, usage)

    def _open_stream(self, messages: list[BaseMessage]) -> tuple[Iterator[AIMessageChunk], AIMessageChunk | None, int]:
        """Start the stream and wait for its first chunk, retrying 429/5xx before anything was shown."""
        attempt = 0
        while True:
            kwargs = {"stream_usage": self._stream_usage} if isinstance(self.model, ChatOpenAI) else {}
            iterator = iter(self.model.stream(messages, **kwargs))
            try:
                return iterator, next(iterator, None), attempt + 1
            except Exception as exc:
                iterator.close()
                if self._stream_usage and _rejects_stream_options(exc):
                    log.info("LLM endpoint rejects stream_options: streamed token usage disabled")
                    self._stream_usage = False
                    continue
                if not _retryable(exc) or attempt >= self.max_retries:
                    raise
                self._sleep(self._delay(attempt, exc))
                attempt += 1

    # ---- follow-up rewriting -------------------------------------------------------------
    def rewrite_follow_up(self, question: str, history: list[tuple[str, str]]) -> Rewrite:
        """A standalone version of a follow-up question, for retrieval. Only when there is history,
        within the rewrite budget, with no retry; on any failure the question is kept as it is."""
        if not history:
            return Rewrite(question, False, "no history")
        try:
            message, attempts = self._call(
                lambda: self.rewriter.invoke(rewrite_messages(question, history)), self.rewrite_budget_s, retries=0
            )
        except Exception as exc:
            reason = failure_reason(exc)
            log.info("follow-up rewriting skipped: %s", reason)
            return Rewrite(question, False, reason)
        usage = self._usage(message, attempts)
        lines = [line.strip() for line in message.text.splitlines() if line.strip()]
        text = lines[0].strip(" \"'«»“”") if lines else ""
        if not text or len(text) > REWRITE_MAX_CHARS:
            return Rewrite(question, False, "unusable rewrite", usage)
        return Rewrite(text, text != question, None, usage)

    # ---- shared steps --------------------------------------------------------------------
    def _call(self, call: Callable[[], AIMessage], wait_s: float, retries: int | None = None) -> tuple[AIMessage, int]:
        """One model call under the concurrency limit, retried on 429/5xx; returns (message, attempts)."""
        retries = self.max_retries if retries is None else retries
        if not self._slots.acquire(timeout=wait_s):
            raise Busy()
        try:
            attempt = 0
            while True:
                try:
                    return call(), attempt + 1
                except Exception as exc:
                    if not _retryable(exc) or attempt >= retries:
                        raise
                    self._sleep(self._delay(attempt, exc))
                    attempt += 1
        finally:
            self._slots.release()

    def _delay(self, attempt: int, exc: BaseException) -> float:
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: use the backoff
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        log.info("LLM call failed (%s), retry %d in %.2fs", failure_reason(exc), attempt + 1, delay)
        return delay * (0.5 + random.random() / 2)

    def _usage(self, message: BaseMessage | None, attempts: int) -> dict:
        return {"model": self.settings.llm_model, **_usage(message), "attempts": attempts}

    def _checked(self, context: AnswerContext, text: str, message: BaseMessage | None, usage: dict) -> GeneratedAnswer:
        if _refused(message, text):
            return self._fallback(context, "refusal", usage)
        if not text.strip():
            return self._fallback(context, "empty answer", usage)
        problems = validate(text, context, SYSTEM_PROMPT)
        if problems:
            if problems == ["no citation"] and REFUSAL_TEXT.search(fold(text)):
                return self._fallback(context, "refusal", usage)
            return self._fallback(context, fallback_reason(problems), usage)
        prefix = self._prefix(context)
        return GeneratedAnswer(prefix + text.strip(), self.name, None, usage)

    def _fallback(self, context: AnswerContext, reason: str, usage: dict) -> GeneratedAnswer:
        log.warning("LLM answer replaced by the grounded answer: %s", reason)
        answer = self.grounded.generate(context)
        return GeneratedAnswer(answer.text, answer.generator, reason, usage)

    @staticmethod
    def _prefix(context: AnswerContext) -> str:
        """What the grounded answer would say first (injection notice, focus, outdated premises): the
        service wrote it, so it is shown as is, before the model's text."""
        blocks = [context.preface] if context.preface else []
        blocks += correction_blocks(context)
        return "\n\n".join(blocks) + "\n\n" if blocks else ""


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest
