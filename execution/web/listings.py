"""The agent's listings: search, view, change status or price, import a CSV/XLSX (a dry run first)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from execution.lib import formatting, property_store
from execution.lib.errors import BadRequest, NotFound
from execution.lib.listing_import import import_listings
from execution.manage_properties import update_property
from execution.web.deps import CsrfAgent, CurrentAgent, ResourcesDep, plain

router = APIRouter(prefix="/api/listings", tags=["listings"])
MAX_UPLOAD = 5 * 1024 * 1024
FIELDS = ("reference", "project_name", "property_type", "listing_type", "city", "district", "district_ar",
          "bedrooms", "bathrooms", "area_sqm", "price", "currency", "status", "payment_plan", "delivery_date")


class ListingChange(BaseModel):
    status: Literal["available", "reserved", "sold"] | None = None
    price: float | None = Field(default=None, ge=0, le=1e12)


def _owner(agent: dict) -> dict:
    return {"id": agent["agent_id"], "organization_id": agent["organization_id"], "email": agent["email"]}


def _shown(p: dict) -> dict:
    return {**{k: p.get(k) for k in FIELDS},
            "price_text": formatting.format_price(p["price"], p["currency"], lang="en", listing_type=p["listing_type"])}


@router.get("")
def listings(res: ResourcesDep, agent: CurrentAgent, q: str | None = None, status: str | None = None,
             limit: int = 50, offset: int = 0) -> dict:
    q = plain(q, "q")
    if status not in (None, "", "available", "reserved", "sold"):
        raise BadRequest("status must be available, reserved or sold")
    if not 1 <= limit <= 200 or offset < 0 or (q and len(q) > 200):
        raise BadRequest("limit 1-200, offset >= 0, q at most 200 characters")
    with res.db.connection() as conn:
        rows, total = property_store.browse_properties(conn, agent_id=agent["agent_id"], q=(q or "").strip() or None,
                                                       status=status or None, limit=limit, offset=offset)
    return {"listings": [_shown(r) for r in rows], "total": total}


@router.get("/{reference}")
def listing(reference: str, res: ResourcesDep, agent: CurrentAgent) -> dict:
    reference = plain(reference, "reference", limit=64)
    with res.db.connection() as conn:
        row = property_store.get_property(conn, agent_id=agent["agent_id"], reference=reference)
    if row is None:
        raise NotFound(f"no listing {reference}")
    return {**_shown(row), "amenities": row["amenities"], "description": row["description"]}


@router.patch("/{reference}")
def change(reference: str, body: ListingChange, res: ResourcesDep, agent: CsrfAgent) -> dict:
    reference = plain(reference, "reference", limit=64)
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    if not changes:
        raise BadRequest("nothing to change: give status and/or price")
    with res.db.connection() as conn:
        row = update_property(conn, agent=_owner(agent), reference=reference, changes=changes,
                              actor=f"inbox:{agent['agent_id']}")
    return _shown(row)


@router.post("/import")
async def import_file(request: Request, res: ResourcesDep, agent: CsrfAgent, dry_run: bool = True) -> dict:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise BadRequest("send the file as multipart/form-data, in the field `file`")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as exc:      # a malformed multipart body: refused with the parser's reason
        raise BadRequest(f"the upload could not be read ({type(exc).__name__})") from None
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise BadRequest("send the file as the form field `file`")
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise BadRequest("the file must be a .csv or .xlsx")
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise BadRequest(f"the file is over {MAX_UPLOAD // (1024 * 1024)} MB", too_large=True)
    from starlette.concurrency import run_in_threadpool

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            with res.db.connection() as conn:
                report = import_listings(conn, path=path, agent=_owner(agent), dry_run=dry_run,
                                         actor=f"inbox:{agent['agent_id']}")
        return {"dry_run": dry_run, "rows": report.rows, "created": report.created, "updated": report.updated,
                "unchanged": report.unchanged, "written": report.written,
                "errors": [_row_error(e) for e in report.errors]}

    return await run_in_threadpool(run)


def _row_error(text: str) -> dict:
    head, _, reason = text.partition(": ")
    if head.startswith("line ") and head[5:].isdigit():
        field, _, why = reason.partition(": ")
        return {"line": int(head[5:]), "field": field, "reason": why or field}
    return {"line": None, "field": head, "reason": reason or head}
