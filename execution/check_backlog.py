"""Show the work that is waiting, who is there to do it, and which channels cannot send.

Reads: webhook_events, conversations, outbox, channels, jobs, loop_heartbeats (every worker,
responder, dispatcher and job runner beats every 5 s). Writes nothing. Work waiting over 30 s with no live loop of the
kind it needs makes /health `down`. `/health` carries the same
report under `backlog`. A channel is listed as failing after consecutive failed sends (a provider
outage, an expired token) or while its provider reports it cannot work (Green API: logged out,
blocked); its replies stay queued and are retried until the sending directive's horizon.

usage: python -m execution.check_backlog
"""

from __future__ import annotations

from dataclasses import dataclass, field

from execution.lib import cli, job_store, ops_store
from execution.lib.db import Connection
from execution.lib.providers import unhealthy_states

FAILING_AFTER = 3     # consecutive failed sends before a channel counts as failing
ALIVE_WITHIN_S = 30   # a loop that has not beaten for this long is taken for dead (it beats every 5 s)
WAITING_TOO_LONG_S = 30


@dataclass(frozen=True)
class Backlog:
    events_waiting: int
    oldest_event_s: float | None
    events_failed: int
    replies_due: int
    oldest_reply_due_s: float | None
    replies_in_progress: int
    sends_unknown: int
    conversations_flagged: int
    sends_queued: list[dict] = field(default_factory=list)
    failing_channels: list[dict] = field(default_factory=list)
    loops: dict = field(default_factory=dict)     # per loop kind: alive count, seconds since the last beat
    jobs_due: int = 0                             # reminders, feedback questions whose time has come
    oldest_job_due_s: float | None = None
    jobs_failed: int = 0                          # used up their attempts: `python -m execution.jobs --failed`

    @property
    def unattended(self) -> str | None:
        """Why waiting work has nobody to do it (no live worker of the kind it needs), or None."""
        def alive(loop: str) -> bool:
            return self.loops.get(loop, {}).get("alive", 0) > 0

        if (self.oldest_event_s or 0) > WAITING_TOO_LONG_S and not alive("webhook-worker"):
            return "webhook events are waiting and no event worker is running"
        if (self.oldest_reply_due_s or 0) > WAITING_TOO_LONG_S and not alive("responder"):
            return "replies are due and no responder is running"
        oldest_send = max((q["oldest_s"] or 0 for q in self.sends_queued), default=0)
        if oldest_send > WAITING_TOO_LONG_S and not alive("outbox-dispatcher"):
            return "sends are queued and no outbox dispatcher is running"
        if (self.oldest_job_due_s or 0) > WAITING_TOO_LONG_S and not alive("job-runner"):
            return "jobs (reminders) are due and no job runner is running"
        return None


def check_backlog(conn: Connection) -> Backlog:
    report = {**ops_store.backlog(conn), **job_store.due_summary(conn)}
    return Backlog(**report, failing_channels=ops_store.failing_channels(conn, at_least=FAILING_AFTER,
                                                                         bad_states=unhealthy_states()),
                   loops=ops_store.heartbeats(conn, fresh_s=ALIVE_WITHIN_S))


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return check_backlog(conn)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
