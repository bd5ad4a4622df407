"""Every error a client reads, in French, with one shape: `{"detail": "<message en français>"}`.

- Validation errors (422): pydantic's error types translated, e.g. « Requête invalide — message :
  champ obligatoire ».
- Starlette's default texts (404 Not Found, 405, « There was an error parsing the body »…) replaced
  by French ones.
The OpenAPI side (the `Erreur` body on every error status) is in api/openapi.py.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi.exceptions import RequestValidationError

INTERNAL = "Erreur interne du service. Réessayez dans un instant ; si elle persiste, signalez-la."

DEFAULTS = {
    400: "Requête illisible : envoyez un corps JSON valide (en-tête Content-Type: application/json).",
    401: "Authentification requise.",
    403: "Accès refusé.",
    404: "Adresse inconnue.",
    405: "Méthode non permise pour cette adresse.",
    406: "Format de réponse non disponible.",
    413: "Requête trop volumineuse.",
    415: "Type de contenu non pris en charge : envoyez du JSON (Content-Type: application/json).",
    422: "Requête invalide.",
    429: "Trop de demandes en peu de temps. Patientez puis réessayez.",
    500: INTERNAL,
    503: "Service momentanément indisponible. Réessayez dans un instant.",
}


def french_detail(status: int, detail: object) -> object:
    """Starlette's English default texts become French; the app's own (French) messages are kept."""
    if not isinstance(detail, str):
        return detail
    english = detail == HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else False
    if english or detail.startswith("There was an error"):
        return DEFAULTS.get(status, "Requête refusée.")
    return detail


def _expected(ctx: dict) -> str:
    return str(ctx.get("expected", "")).replace(" or ", " ou ")


_MESSAGES = {
    "missing": lambda c: "champ obligatoire",
    "extra_forbidden": lambda c: "champ inconnu",
    "string_pattern_mismatch": lambda c: "format invalide",
    "string_type": lambda c: "texte attendu",
    "string_unicode": lambda c: "texte attendu",
    "int_type": lambda c: "nombre entier attendu",
    "int_parsing": lambda c: "nombre entier attendu",
    "int_from_float": lambda c: "nombre entier attendu",
    "int_parsing_size": lambda c: "nombre trop grand",
    "float_type": lambda c: "nombre attendu",
    "float_parsing": lambda c: "nombre attendu",
    "bool_type": lambda c: "booléen attendu (true ou false)",
    "bool_parsing": lambda c: "booléen attendu (true ou false)",
    "less_than_equal": lambda c: f"doit valoir au plus {c.get('le')}",
    "less_than": lambda c: f"doit valoir moins de {c.get('lt')}",
    "greater_than_equal": lambda c: f"doit valoir au moins {c.get('ge')}",
    "greater_than": lambda c: f"doit valoir plus de {c.get('gt')}",
    "string_too_long": lambda c: f"{c.get('max_length')} caractères au plus",
    "string_too_short": lambda c: f"{c.get('min_length')} caractère(s) au moins",
    "too_long": lambda c: f"{c.get('max_length')} élément(s) au plus",
    "too_short": lambda c: f"{c.get('min_length')} élément(s) au moins",
    "literal_error": lambda c: f"valeur non permise (attendu : {_expected(c)})",
    "enum": lambda c: f"valeur non permise (attendu : {_expected(c)})",
    "json_invalid": lambda c: "JSON invalide",
    "json_type": lambda c: "JSON attendu",
    "model_type": lambda c: "objet JSON attendu",
    "model_attributes_type": lambda c: "objet JSON attendu",
    "dict_type": lambda c: "objet JSON attendu",
    "list_type": lambda c: "liste attendue",
    "date_type": lambda c: "date attendue (AAAA-MM-JJ)",
    "date_parsing": lambda c: "date attendue (AAAA-MM-JJ)",
    "date_from_datetime_parsing": lambda c: "date attendue (AAAA-MM-JJ)",
    "date_from_datetime_inexact": lambda c: "date attendue (AAAA-MM-JJ)",
}


def _message(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "value_error":  # our own validators speak French already
        return str(error.get("msg", "")).removeprefix("Value error, ")
    translate = _MESSAGES.get(kind)
    return translate(error.get("ctx") or {}) if translate else "valeur invalide"


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p not in ("body", "query", "path", "header"))
        if error.get("type") == "json_invalid" and isinstance(error["loc"][-1], int):
            where = f"corps, caractère {error['loc'][-1]}"  # the position FastAPI reports, not a field
        parts.append(f"{where or 'corps'} : {_message(error)}")
    return "Requête invalide — " + " ; ".join(dict.fromkeys(parts))
