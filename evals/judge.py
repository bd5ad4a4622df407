"""Optional LLM judge (faithfulness and relevance, in French) through an OpenAI-compatible endpoint.

Runs only when AIGUILLAGE_JUDGE_BASE_URL and AIGUILLAGE_JUDGE_MODEL are set (AIGUILLAGE_JUDGE_API_KEY
if the endpoint needs one), and never in CI (CI set in the environment). Any error is counted, never
raised: the judge adds figures to the report, it never decides a run.
"""

from __future__ import annotations

import json
import os
import re

import httpx
from tqdm import tqdm

PROMPT = """Tu évalues la réponse d'un assistant qui oriente les collectivités vers des offres d'aide publique.

Question de la collectivité :
{question}

Fiches des offres citées par l'assistant (seule source autorisée) :
{cards}

Réponse de l'assistant :
{answer}

Note deux critères entre 0 et 1 :
- "fidelite" : chaque affirmation de la réponse est-elle appuyée par les fiches ? (1 = tout est appuyé)
- "pertinence" : la réponse répond-elle à la question et oriente-t-elle vers les bonnes offres ? (1 = parfaitement)
Réponds uniquement par un objet JSON : {{"fidelite": nombre, "pertinence": nombre, "justification": "une phrase"}}"""


def judge_config() -> dict | None:
    base_url = os.environ.get("AIGUILLAGE_JUDGE_BASE_URL")
    model = os.environ.get("AIGUILLAGE_JUDGE_MODEL")
    if not base_url or not model or os.environ.get("CI"):
        return None
    return {"base_url": base_url.rstrip("/"), "model": model, "api_key": os.environ.get("AIGUILLAGE_JUDGE_API_KEY")}


def _card_text(offer) -> str:
    figures = "; ".join(f"{f.label} : {f.value}" for f in offer.figures)
    return f"[{offer.id}] {offer.title}\n{offer.summary}\n{offer.description}\nRepères : {figures}\nStatut : {offer.status}"


def parse_scores(text: str) -> tuple[float, float] | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group())
        return max(0.0, min(1.0, float(data["fidelite"]))), max(0.0, min(1.0, float(data["pertinence"])))
    except (ValueError, KeyError, TypeError):
        return None


def judge_answers(cases: list[dict], ctx, config: dict, bar: dict) -> dict:
    headers = {"Authorization": f"Bearer {config['api_key']}"} if config.get("api_key") else {}
    faithfulness, relevance, errors, items = [], [], 0, []
    with httpx.Client(base_url=config["base_url"], headers=headers, timeout=60) as client:
        for case in tqdm(cases, desc="Juge LLM", unit="réponse", **bar):
            last = case["assistant"][-1]
            cards = "\n\n".join(_card_text(ctx.offers[i]) for i in last["citations"] if i in ctx.offers)
            prompt = PROMPT.format(question="\n".join(case["turns"]), cards=cards or "(aucune)", answer=last["answer"])
            try:
                response = client.post(
                    "/chat/completions",
                    json={"model": config["model"], "temperature": 0, "messages": [{"role": "user", "content": prompt}]},
                )
                response.raise_for_status()
                scores = parse_scores(response.json()["choices"][0]["message"]["content"])
            except (httpx.HTTPError, KeyError, IndexError, ValueError):
                scores = None
            if scores is None:
                errors += 1
                continue
            faithfulness.append(scores[0])
            relevance.append(scores[1])
            items.append({"id": case["id"], "faithfulness": scores[0], "relevance": scores[1]})
    return {
        "model": config["model"],
        "faithfulness": sum(faithfulness) / len(faithfulness) if faithfulness else None,
        "relevance": sum(relevance) / len(relevance) if relevance else None,
        "judged": len(items),
        "errors": errors,
        "items": items,
    }
