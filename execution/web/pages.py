"""The inbox's pages and static files: `/` (the inbox, or the login page), `/login`, `/listings`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from execution.agent_sessions import viewer
from execution.web.deps import COOKIE, ResourcesDep

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STATIC = TEMPLATES / "static"
router = APIRouter(include_in_schema=False)
_SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; "
                                                "style-src 'self'; script-src 'self'; connect-src 'self'; "
                                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                     "Cache-Control": "no-cache"}


def _page(name: str) -> Response:
    return HTMLResponse((TEMPLATES / name).read_text(encoding="utf-8"), headers=_SECURITY_HEADERS)


@router.get("/")
def inbox(request: Request, res: ResourcesDep) -> Response:
    if viewer(res.db, request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login", status_code=303)
    return _page("inbox.html")


@router.get("/login")
def login_page() -> Response:
    return _page("login.html")


@router.get("/listings")
def listings_page(request: Request, res: ResourcesDep) -> Response:
    if viewer(res.db, request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login?next=/listings", status_code=303)
    return _page("listings.html")


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")
