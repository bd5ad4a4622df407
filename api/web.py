"""Pages served to people: the full-page chat at /, the embeddable widget script, the agents' console."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
# Every asset is local: the pages may load nothing from elsewhere (inline styles only, no inline script).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


@router.get("/")
def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": CSP})


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
