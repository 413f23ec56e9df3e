"""What every route shares: the process's resources, the directive snapshot, and who is asking.

`CurrentAgent` is the logged-in agent (401 without a live session); `CsrfAgent` also requires the
session's CSRF token in `X-CSRF-Token` (every state-changing request). The session cookie is
HttpOnly and SameSite=Lax, and Secure when the request came over https (directly or through a proxy
that says so in X-Forwarded-Proto).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from execution.agent_sessions import viewer
from execution.lib.directives import Snapshot
from execution.lib.errors import BadRequest, Forbidden, Unauthorized
from execution.lib.resources import Resources

COOKIE = "session"


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_snapshot(request: Request) -> Snapshot:
    return request.app.state.directives.current()


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


def get_providers(request: Request):
    return request.app.state.providers


def current_agent(request: Request, res: ResourcesDep) -> dict:
    found = viewer(res.db, request.cookies.get(COOKIE))
    if found is None:
        raise Unauthorized("log in first")
    return found


CurrentAgent = Annotated[dict, Depends(current_agent)]


def csrf_agent(request: Request, agent: CurrentAgent) -> dict:
    presented = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(presented.encode(), agent["csrf_token"].encode()):
        raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header from /api/me)")
    return agent


CsrfAgent = Annotated[dict, Depends(csrf_agent)]


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def plain(value: str | None, name: str, *, limit: int = 200) -> str | None:
    """A query or path text the database can take: no NUL or other control characters, bounded."""
    if value is None:
        return None
    if len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise BadRequest(f"{name}: at most {limit} characters, no control characters")
    return value
