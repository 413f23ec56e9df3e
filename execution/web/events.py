"""Live updates for the inbox: Server-Sent Events of the agent's new messages, delivery statuses, mode
changes and escalations, within a second, to every open tab of that agent.

Events come from the `inbox_events` table (written by database triggers, whichever process made the
change), so any number of web processes serve them. Each process runs one `EventHub` thread that
reads new events every `POLL_S` and hands each to the tabs allowed to see it; a tab that reconnects
with `Last-Event-ID` first gets what it missed from the table, scoped to the agent, then live ones.
A stream re-checks its session every keep-alive, so logging out everywhere ends it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from execution.agent_sessions import viewer as session_viewer
from execution.lib import inbox_store
from execution.lib.db import Database
from execution.web.deps import COOKIE, CurrentAgent, ResourcesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])
POLL_S = 0.25
KEEPALIVE_S = 15.0
KEEP_EVENTS_S = 2 * 86_400
GAP_WAIT_S = 60.0   # longer than any transaction that writes events


class EventHub:
    """One reader of inbox_events per process, fanning events out to the subscribed streams."""

    def __init__(self, db: Database, *, poll_s: float = POLL_S) -> None:
        self.db, self.poll_s = db, poll_s
        self._subs: dict[int, tuple[dict, asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inbox-events", daemon=True)
        self.last_id = 0

    def start(self) -> "EventHub":
        with self.db.connection() as conn:
            self.last_id = inbox_store.last_event_id(conn)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def subscribe(self, viewer: dict, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subs[id(queue)] = (viewer, loop, queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subs.pop(id(queue), None)

    def _run(self) -> None:
        next_prune = time.monotonic() + 600
        gaps: dict[int, float] = {}     # ids below last_id not seen yet (a transaction still open, or rolled back)
        while not self._stop.wait(self.poll_s):
            with self._lock:
                idle = not self._subs
            try:
                with self.db.connection() as conn:
                    if idle:
                        # Nobody is listening: keep the place and the ids still uncommitted (a tab that
                        # reconnects replays from its own id, and gets a late one through the gaps).
                        rows = inbox_store.event_ids_after(conn, after_id=self.last_id, also=list(gaps))
                    else:
                        rows = inbox_store.all_events_after(conn, after_id=self.last_id, also=list(gaps))
                    if time.monotonic() > next_prune:
                        next_prune = time.monotonic() + 600
                        inbox_store.prune_events(conn, older_than_s=KEEP_EVENTS_S)
            except Exception as exc:      # the database blinked: the next round reads from the same id
                log.warning("inbox events: read failed (%s)", type(exc).__name__)
                continue
            now = time.monotonic()
            for gap in [g for g, since in gaps.items() if now - since > GAP_WAIT_S]:
                del gaps[gap]             # never committed (rolled back): stop asking
            for r in rows:
                if r["id"] > self.last_id:
                    gaps.update((g, now) for g in range(max(self.last_id + 1, r["id"] - 10_000), r["id"]))
                    self.last_id = r["id"]
                else:
                    gaps.pop(r["id"], None)
            if not rows or idle:
                continue
            for r in rows:
                r["frame"] = _frame(r)     # once, not once per tab
            with self._lock:
                subs = list(self._subs.values())
            for viewer, loop, queue in subs:
                mine = [r for r in rows if r["agent_id"] == viewer["agent_id"]
                        or (viewer.get("role") == "admin" and r["organization_id"] == viewer["organization_id"])]
                if mine:                   # one hand-over and one write per tab per poll, not per event
                    loop.call_soon_threadsafe(_offer, queue, mine)


def _offer(queue: asyncio.Queue, row: dict) -> None:
    try:
        queue.put_nowait(row)
    except asyncio.QueueFull:     # a stalled tab: it reconnects and replays from its last id
        pass


def _frame(row: dict) -> str:
    return f"id: {row['id']}\nevent: {row['kind']}\ndata: {json.dumps({'conversation_id': row['conversation_id']})}\n\n"


@router.get("/api/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "an event stream"}})
async def events(request: Request, res: ResourcesDep, agent: CurrentAgent) -> StreamingResponse:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    last = int(raw) if raw.isdigit() else 0
    hub: EventHub = request.app.state.events
    queue = hub.subscribe(agent, asyncio.get_running_loop())
    token = request.cookies.get(COOKIE)

    async def stream():
        sent = last
        recent: set[int] = set()     # a late commit arrives below `sent`: sent once all the same (bounded below)
        try:
            yield f"retry: 2000\n: connected\n\n"
            if last:
                missed = await run_in_threadpool(_missed, res.db, agent, last)
                for row in missed:
                    sent = max(sent, row["id"])
                    recent.add(row["id"])
                    yield _frame(row)
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    if await run_in_threadpool(session_viewer, res.db, token) is None:
                        yield "event: logout\ndata: {}\n\n"
                        return
                    yield ": keep-alive\n\n"
                    continue
                out = []
                for row in batch:
                    if row["id"] > last and row["id"] not in recent:
                        sent = max(sent, row["id"])
                        recent.add(row["id"])
                        out.append(row["frame"])
                if len(recent) > 4000:       # late commits come within a minute: keep the newest ids only
                    recent = set(sorted(recent)[-2000:])
                if out:
                    yield "".join(out)
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _missed(db: Database, agent: dict, after: int) -> list[dict]:
    with db.connection() as conn:
        return inbox_store.events_after(conn, viewer=agent, after_id=after)
