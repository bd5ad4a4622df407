"""Pages served to people: the full-page chat at /, a shared conversation, the legal pages, the
embeddable widget script, the API documentation and the agents' console.

Every asset is local (DSFR, Marianne, Swagger UI are vendored under static/vendor/): the pages load
nothing from elsewhere, carry no inline script nor inline style, and say so in their CSP.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Path as PathParam, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.models import CONVERSATION_ID

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d+)?")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
HTML_HEADERS = {"Content-Security-Policy": CSP + "; frame-ancestors 'none'", "Referrer-Policy": "same-origin"}
WIDGET_SCRIPT = '<script src="/widget.js"></script>'
# (path, file under static/pages, title, body class, scripts); only the chat page may be framed
PAGES = {
    "/": ("accueil", "Aiguillage — trouver le bon partenaire pour le projet de votre collectivité", "chat", WIDGET_SCRIPT),
    "/mentions-legales": ("mentions-legales", "Mentions légales — Aiguillage", "", ""),
    "/donnees-personnelles": ("donnees-personnelles", "Données personnelles — Aiguillage", "", ""),
    "/accessibilite": ("accessibilite", "Déclaration d'accessibilité — Aiguillage", "", ""),
}
TAGLINE = "Le bon partenaire de l'ANCT pour le projet de votre collectivité"


@lru_cache(maxsize=32)
def render_page(name: str, title: str, body_class: str, scripts: str, retention_days: int) -> str:
    """A page of static/pages/ inside the shared layout (République française header, legal links).
    `{retention_days}` in a page is AIGUILLAGE_CONVERSATION_RETENTION_DAYS."""
    main = (STATIC_DIR / "pages" / f"{name}.html").read_text(encoding="utf-8").replace("{retention_days}", str(retention_days))
    layout = (STATIC_DIR / "layout.html").read_text(encoding="utf-8")
    return (
        layout.replace("{title}", title).replace("{body_class}", body_class).replace("{tagline}", TAGLINE)
        .replace("{scripts}", scripts).replace("{main}", main)
    )


def frame_ancestors(origins: list[str]) -> str:
    """CSP frame-ancestors for the chat page: only the origins of AIGUILLAGE_FRAME_ANCESTORS may frame it."""
    allowed = [o for o in origins if ORIGIN.fullmatch(o)]  # nothing that could add a directive
    return "frame-ancestors " + " ".join(["'self'", *allowed])


def _retention(request: Request) -> int:
    return request.app.state.settings.conversation_retention_days


def _page_route(path: str, name: str, title: str, body_class: str, scripts: str) -> None:
    def page(request: Request) -> HTMLResponse:
        headers = HTML_HEADERS
        if path == "/":
            policy = f"{CSP}; {frame_ancestors(request.app.state.settings.frame_ancestors)}"
            headers = {**HTML_HEADERS, "Content-Security-Policy": policy}
        return HTMLResponse(render_page(name, title, body_class, scripts, _retention(request)), headers=headers)

    router.add_api_route(path, page, methods=["GET"], name=f"page-{name}")


for _path, (_name, _title, _class, _scripts) in PAGES.items():
    _page_route(_path, _name, _title, _class, _scripts)


@router.get("/conversation/{conversation_id}")
def shared_conversation(request: Request, conversation_id: str = PathParam(pattern=CONVERSATION_ID)) -> HTMLResponse:
    # A read-only view of a conversation; the widget reads the id from the address.
    html = render_page("conversation", "Conversation partagée — Aiguillage", "chat", WIDGET_SCRIPT, _retention(request))
    return HTMLResponse(html, headers={**HTML_HEADERS, "X-Robots-Tag": "noindex"})


@lru_cache(maxsize=4)
def widget_source(retention_days: int) -> str:
    return (STATIC_DIR / "widget.js").read_text(encoding="utf-8").replace("__RETENTION_DAYS__", str(retention_days))


@router.get("/widget.js")
def widget_script(request: Request) -> Response:
    # Embedded on other sites: any origin may load the script itself (the API stays behind CORS).
    return Response(
        widget_source(_retention(request)),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/docs")
def api_docs() -> FileResponse:
    # Swagger UI from static/vendor/swagger-ui (pinned, see its README), started by a local script.
    return FileResponse(STATIC_DIR / "docs.html", headers=HTML_HEADERS)


@router.get("/console/departements.json")
def departements(request: Request) -> FileResponse:
    # Codes and names of the départements (corpus/territoires/), for the console's filter by code or name.
    path = Path(request.app.state.settings.corpus_dir) / "territoires" / "departements.json"
    return FileResponse(path, media_type="application/json", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/console")
def console_page() -> FileResponse:
    # The page holds no data: everything comes from the API with the agent's token.
    return FileResponse(
        STATIC_DIR / "console.html",
        headers={**HTML_HEADERS, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
