"""The customer simulator: chat as a customer with a sandbox agent, and see the assistant's and the
agent's replies live. No login, so it is off in production, and off (unless SIMULATOR=true) once a
real channel is connected."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from execution.lib import message_store, tenant_store
from execution.lib.cli import jsonable
from execution.lib.errors import BadRequest, NotFound
from execution.lib.security import sandbox_webhook_token
from execution.web.deps import ResourcesDep

PAGE = Path(__file__).resolve().parents[2] / "templates" / "simulator.html"


def simulator_on(request: Request) -> bool:
    res = request.app.state.resources
    if res.settings.is_production or res.settings.simulator is False:
        return False
    return res.settings.simulator is True or not request.app.state.receiver.channels.real_channel_exists()


def require_simulator(request: Request, res: ResourcesDep) -> None:
    """Refuse (404 with the reason) unless the simulator is on."""
    if res.settings.is_production:
        raise NotFound("the simulator is off in production")
    if res.settings.simulator is False:
        raise NotFound("the simulator is off (SIMULATOR=false)")
    if not simulator_on(request):
        raise NotFound("the simulator is off: a real channel is connected here (SIMULATOR=true turns it on)")


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_simulator)])


@router.get("/simulator")
def simulator() -> Response:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@router.get("/simulator/api/agents")
def simulator_agents(res: ResourcesDep) -> JSONResponse:
    with res.db.connection() as conn:
        channels = tenant_store.sandbox_channels(conn)
    # Sandbox tokens authorize only sandbox channels, which never send anywhere real.
    return JSONResponse([{**c, "token": sandbox_webhook_token(res.settings.secret_key, c["instance_id"])}
                         for c in channels])


@router.get("/simulator/api/messages")
def simulator_messages(res: ResourcesDep, channel_id: int, chat_id: str, after_id: int = 0) -> JSONResponse:
    if "\x00" in chat_id or len(chat_id) > 200:
        raise BadRequest("chat_id is not a chat id")
    with res.db.connection() as conn:
        timeline = message_store.sandbox_chat_timeline(conn, channel_id=channel_id, chat_id=chat_id,
                                                       after_id=after_id)
    return JSONResponse(jsonable(timeline))
