"""Show the work that is waiting: stored events, due replies, queued sends per channel, failing channels.

Reads: webhook_events, conversations, outbox, channels. Writes nothing. `/health` carries the same
report under `backlog`. A channel is listed as failing after consecutive failed sends (a provider
outage, an expired token) or while its provider reports it cannot work (Green API: logged out,
blocked); its replies stay queued and are retried until the sending directive's horizon.

usage: python -m execution.check_backlog
"""

from __future__ import annotations

from dataclasses import dataclass, field

from execution.lib import cli, ops_store
from execution.lib.db import Connection
from execution.lib.providers import unhealthy_states

FAILING_AFTER = 3     # consecutive failed sends before a channel counts as failing


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


def check_backlog(conn: Connection) -> Backlog:
    report = ops_store.backlog(conn)
    return Backlog(**report, failing_channels=ops_store.failing_channels(conn, at_least=FAILING_AFTER,
                                                                         bad_states=unhealthy_states()))


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return check_backlog(conn)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
