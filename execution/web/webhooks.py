"""The providers' webhooks: one route per provider (`/webhooks/{route}`), acknowledged once stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from execution.lib.errors import BadRequest
from execution.lib.providers.base import MAX_BODY_BYTES, WebhookRequest

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/{route}")
async def webhook(route: str, request: Request) -> JSONResponse:
    body = await _read_capped(request, MAX_BODY_BYTES)
    receipt = await request.app.state.receiver.receive_async(route, _webhook_request(request, body))
    return JSONResponse(receipt.as_json())


@router.get("/webhooks/{route}")
def webhook_handshake(route: str, request: Request) -> Response:
    return PlainTextResponse(request.app.state.receiver.handshake(route, _webhook_request(request)))


def _webhook_request(request: Request, body: bytes = b"") -> WebhookRequest:
    return WebhookRequest(request.method, {k.lower(): v for k, v in request.headers.items()},
                          dict(request.query_params), body)


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"body is {declared} bytes; the limit is {limit}", too_large=True)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body is over the limit of {limit} bytes", too_large=True)
        chunks.append(chunk)
    return b"".join(chunks)
