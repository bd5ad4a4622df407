"""Pages served to people: the full-page chat at /, the embeddable widget script, the agents' console."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d+)?")
# Every asset is local: the pages may load nothing from elsewhere (inline styles only, no inline script).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def frame_ancestors(origins: list[str]) -> str:
    """CSP frame-ancestors for the chat page: only the origins of AIGUILLAGE_FRAME_ANCESTORS may frame it."""
    allowed = [o for o in origins if ORIGIN.fullmatch(o)]  # nothing that could add a directive
    return "frame-ancestors " + " ".join(["'self'", *allowed])


@router.get("/")
def chat_page(request: Request) -> FileResponse:
    policy = f"{CSP}; {frame_ancestors(request.app.state.settings.frame_ancestors)}"
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": policy, "Referrer-Policy": "same-origin"})


@router.get("/widget.js")
def widget_script() -> FileResponse:
    # Embedded on other sites: any origin may load the script itself (the API stays behind CORS).
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/console")
def console_page() -> FileResponse:
    # The page holds no data: everything comes from the API with the agent's token.
    return FileResponse(
        STATIC_DIR / "console.html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP + "; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
        },
    )
