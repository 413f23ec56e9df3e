"""Log in, log out, log out everywhere, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from execution import agent_sessions
from execution.lib import llm
from execution.web.deps import COOKIE, CsrfAgent, CurrentAgent, ResourcesDep, client_address, is_https

router = APIRouter(prefix="/api", tags=["auth"])


class LoginBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


@router.post("/auth/login")
def login(body: LoginBody, request: Request, res: ResourcesDep) -> JSONResponse:
    session = agent_sessions.log_in(res.db, res.redis, email=body.email, password=body.password,
                                    address=client_address(request))
    response = JSONResponse({"ok": True})
    response.set_cookie(COOKIE, session.token, max_age=agent_sessions.TTL_S, httponly=True, samesite="lax",
                        secure=is_https(request), path="/")
    return response


@router.post("/auth/logout")
def logout(request: Request, res: ResourcesDep, agent: CsrfAgent) -> JSONResponse:
    agent_sessions.log_out(res.db, request.cookies.get(COOKIE))
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/auth/logout-everywhere")
def logout_everywhere(res: ResourcesDep, agent: CsrfAgent) -> JSONResponse:
    revoked = agent_sessions.log_out_everywhere(res.db, agent_id=agent["agent_id"],
                                                organization_id=agent["organization_id"],
                                                actor=f"inbox:{agent['agent_id']}")
    response = JSONResponse({"ok": True, "sessions": revoked})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me")
def me(request: Request, agent: CurrentAgent) -> dict:
    return {"agent": {"id": agent["agent_id"], "name": agent["name"], "email": agent["email"],
                      "language": agent["language"], "arabic_digits": agent["language"] == "ar" and agent["arabic_digits"] is not False,
                      "role": agent["role"], "agency": agent["agency"]},
            "csrf_token": agent["csrf_token"], "simulator": request.app.state.simulator_on(),
            # Whether a hand-back note is read: a model backend reads it, the template responder does not.
            "assistant_reads_notes": llm.backend_choice(request.app.state.resources.settings) != "offline"}
