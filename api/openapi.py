"""The OpenAPI document tells the truth about what the server accepts and answers.

- `document_errors`: the 422 body is the same `Erreur` object as every other error (not FastAPI's
  array), and each operation lists the error statuses it can return.
- `describe_inputs`: limits checked in code from settings or the corpus appear in the schema —
  the message length, the theme vocabulary, the offer ids a review may name — so a request valid
  by the schema is accepted, and one that is not gets a 4xx.
"""

from __future__ import annotations

from api.models import VISIBLE

ERROR_SCHEMA = {
    "title": "Erreur",
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "Message en français, à montrer tel quel."}},
    "required": ["detail"],
}
_DESCRIPTIONS = {
    400: "Corps illisible.",
    401: "Jeton d'accès manquant, invalide ou révoqué.",
    403: "Rôle insuffisant (administrateurs seulement).",
    404: "Ressource inconnue.",
    413: "Corps de requête trop volumineux.",
    422: "Requête invalide (message en français).",
    429: "Limite de débit atteinte ; l'en-tête Retry-After donne l'attente en secondes.",
    500: "Erreur interne, sans détail technique.",
    503: "Index ou base de données momentanément indisponible.",
}


def document_errors(schema: dict, limited: set[str], console_paths: set[str]) -> dict:
    """Add the error responses each operation can return, all with the `Erreur` body.

    `limited`: paths under the public rate limit (429); `console_paths` need a token (401; 403
    for DELETE).
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Erreur"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Erreur"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            codes = {500, 503}
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(422)
            if operation.get("requestBody"):
                codes |= {400, 413}
            if "{" in path or path in limited:
                codes.add(404)
            if path in limited:
                codes.add(429)
            if path in console_paths:
                codes |= {401, 404}  # 404: unknown conversation, or a département filter naming none
                if method == "delete":
                    codes.add(403)
            for code in sorted(codes):
                entry = {"description": _DESCRIPTIONS[code], "content": {"application/json": {"schema": ref}}}
                if code == 429:
                    entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Secondes."}}
                responses[str(code)] = entry
    return schema


def describe_inputs(schema: dict, max_chars: int, themes: list[str], offers: list[str]) -> dict:
    """Write into the schema the checks made in code: non-blank text of at most `max_chars`
    characters for the question fields, themes from the vocabulary, reviewed offers from the index."""
    schemas = schema.get("components", {}).get("schemas", {})
    text = {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": VISIBLE}
    for model, field in (("ChatRequest", "message"), ("SearchRequest", "query")):
        if model in schemas:
            schemas[model]["properties"][field].update(text)
    if "SearchFiltersIn" in schemas:
        schemas["SearchFiltersIn"]["properties"]["theme"]["items"] = {"type": "string", "enum": themes}
    if "ReviewRequest" in schemas:
        for field in ("primary", "acceptable"):
            for option in schemas["ReviewRequest"]["properties"][field].get("anyOf", []):
                if option.get("type") == "array":
                    option["items"] = {"type": "string", "enum": offers}
    for operation in (schema["paths"].get("/v1/offers", {}).get("get"),):
        for parameter in (operation or {}).get("parameters", []):
            if parameter["name"] == "theme":
                parameter["schema"] = {"anyOf": [{"type": "string", "enum": themes}, {"type": "null"}]}
    return schema
