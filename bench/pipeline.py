"""End-to-end reply throughput: N customers over M Green API channels, webhook → worker → responder → send.

Starts the real app (uvicorn, RUN_WORKER=true) against a scratch database, with one agent, the
Nile Homes demo listings and M Green API channels (instances 1109100000 + i) that all point at one
fake Green API on 127.0.0.1 (in this process) which answers every instance and records each send
with a monotonic timestamp. Every customer (chat 2010NNNNNNNN@c.us, customer n on channel n % M)
writes one first message; the N webhooks are spread evenly over --spread seconds (1 s). The run is
measured until every customer has had a reply (or --timeout), then it waits --settle seconds more
for late duplicates.

Printed: replies/s over the run (first webhook → last first-reply), p50 / p95 / max of
webhook → first send per customer, the peak RSS (VmHWM) of each process started, the pacing limit
(M × 1000 / send_interval_ms.green_api replies/s) and the measured share of it, the burst window.
Checked: every webhook got 200 and was stored; exactly one reply per customer (none missing, no
duplicates, nothing sent to a chat that did not write); the smallest gap between two sends on one
channel is not below the interval (beyond --gap-tolerance-ms of timing jitter, 10 ms; every gap
below it is counted and printed, and a short gap right after a send that left late — the channel's
first, or one after a longer gap — is told apart). Sends are timed where the fake receives them.
Problems make the exit status non-zero (timed out: 1, wrong: 2).

usage: python bench/pipeline.py [--chats 500] [--channels 50] [--processes 1|2] [--timeout 600]
  --processes 2: the web process (RUN_WORKER=true) plus one `python -m execution.worker` on the
  same database and Redis.
Uses BENCH_DATABASE_URL / BENCH_REDIS_URL as bench/webhook_ack.py does (a scratch database is
created and dropped; with BENCH_REDIS_URL the app gets Redis database index --redis-db (14), which
must be empty or hold only this project's keys; they are deleted before and after), else embedded
PostgreSQL and Redis in a temporary directory. REPLY_WORKERS / DB_POOL_MAX from the environment
are passed to the app (the app's defaults otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_database  # noqa: E402
from bench.webhook_ack import APP_SECRET_KEY, command_line, free_port, tail, wait_port  # noqa: E402
from tests.fakes.green_api_server import _PATH, FakeGreenApi  # noqa: E402

INSTANCE_BASE = 1109100000
AGENT_EMAIL = "pipeline@bench.example"
LISTINGS = ROOT / "execution/demo_data/listings_nile_homes.csv"
FIXTURE = ROOT / "tests/fixtures/green_api/greenapi_incoming_text.json"
TEXT = "I want a 2 bedroom apartment for rent in Maadi"
APP_KEY_PREFIXES = ("lock:conversation:", "idem:", "pace:channel:")   # execution/lib/guards.py
REDIS_OWNER_KEY = "bench:pipeline:owner"
START_ATTEMPTS = 3
START_RETRY_WAIT_S = 60


def chat_id(n: int) -> str:
    return f"2010{n:08d}@c.us"


def instance(i: int) -> str:
    return str(INSTANCE_BASE + i)


def api_token(i: int) -> str:
    return f"bench-api-token-{i:04d}"


def webhook_token(i: int) -> str:
    return f"bench-webhook-token-{i:04d}"


class FakeGreenApiFleet(FakeGreenApi):
    """The fake Green API answering many instances (each with its own token); every call timed."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__()
        self.tokens = tokens
        self.sends: list[tuple[float, str, str, str | None, int]] = []   # (monotonic, instance, method, chatId, status)

    def _answer(self, path: str, raw: bytes):
        t = time.monotonic()
        m = _PATH.match(path)
        if not m:
            return 404, {"error": "not found"}, 0
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"error": "Bad Request Validation failed"}, 0
        expected = self.tokens.get(m["instance"])
        status = 200 if expected is not None and m["token"] == expected else (403 if expected is None else 401)
        with self._lock:
            self._count += 1
            msg_id = f"FAKE{self._count:016X}"
            self.sends.append((t, m["instance"], m["method"], body.get("chatId"), status))
        if status != 200:
            return status, {"error": "Forbidden" if status == 403 else "Unauthorized"}, 0
        return 200, {"idMessage": msg_id}, 0

    def snapshot(self) -> list[tuple[float, str, str, str | None, int]]:
        with self._lock:
            return list(self.sends)


# --- database and Redis --------------------------------------------------------------------------------

def seed(dsn: str, *, channels: int, api_url: str) -> None:
    from execution.lib import tenant_store
    from execution.lib.db import connect, transaction
    from execution.lib.listing_import import import_listings
    from execution.register_channel import register_channel

    c = connect(dsn)
    try:
        with transaction(c):
            org = tenant_store.upsert_organization(c, slug="bench-pipeline", name="Bench Pipeline")
            agent = tenant_store.upsert_agent(c, organization_id=org["id"], email=AGENT_EMAIL, name="Bench Agent",
                                              password_hash=None)
        report = import_listings(c, path=LISTINGS, reassign=True,
                                 agent={"id": agent["id"], "organization_id": org["id"], "email": AGENT_EMAIL})
        if report.exit_code or not report.written:
            raise SystemExit(f"listing import failed: {report}")
        for i in range(channels):
            register_channel(c, agent_email=AGENT_EMAIL, instance_id=instance(i), api_url=api_url,
                             api_token=api_token(i), secret_key=APP_SECRET_KEY, webhook_token=webhook_token(i))
    finally:
        c.close()


def db_summary(dsn: str) -> dict[str, dict]:
    from execution.lib.db import connect

    out: dict[str, dict] = {}
    c = connect(dsn)
    try:
        with c.cursor() as cur:
            for label, sql in (
                ("webhook_events", "SELECT status AS k, count(*) AS n FROM webhook_events GROUP BY 1"),
                ("outbox", "SELECT status AS k, count(*) AS n FROM outbox GROUP BY 1"),
                ("messages", "SELECT author AS k, count(*) AS n FROM messages GROUP BY 1"),
                ("conversations", "SELECT mode || CASE WHEN reply_due_at IS NULL THEN '' ELSE ' (reply due)' END AS k,"
                                  " count(*) AS n FROM conversations GROUP BY 1"),
                ("escalations", "SELECT status AS k, count(*) AS n FROM escalations GROUP BY 1"),
            ):
                try:
                    cur.execute(sql)
                    out[label] = {r["k"]: int(r["n"]) for r in cur.fetchall()}
                except Exception as exc:  # a schema another engineer is changing: report, do not fail the run
                    out[label] = {"error": type(exc).__name__}
    finally:
        c.close()
    return out


class RedisScope:
    """A Redis database index of the bench's own: checked empty (or only this project's keys), cleared after."""

    def __init__(self, url: str, db: int) -> None:
        import redis as redis_lib

        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(path=f"/{db}"))
        self.db = db
        self.client = redis_lib.Redis.from_url(self.url)
        self.token = f"{os.getpid()}:{uuid.uuid4().hex}"

    def claim(self, ttl_s: int) -> None:
        if not self.client.set(REDIS_OWNER_KEY, self.token, nx=True, ex=ttl_s):
            raise SystemExit(f"Redis db {self.db} is in use by another pipeline bench ({REDIS_OWNER_KEY} is set); "
                             f"choose another --redis-db")
        foreign = [k.decode(errors="replace") for k in self.client.scan_iter(count=1000)
                   if not k.decode(errors="replace").startswith(APP_KEY_PREFIXES + (REDIS_OWNER_KEY,))]
        if foreign:
            self.client.delete(REDIS_OWNER_KEY)
            raise SystemExit(f"Redis db {self.db} holds keys that are not this project's (e.g. {foreign[:3]}); "
                             f"refusing to clear it — choose another --redis-db")
        self.clear()

    def clear(self) -> None:
        for prefix in APP_KEY_PREFIXES:
            keys = list(self.client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                self.client.delete(*keys[i:i + 500])

    def release(self) -> None:
        try:
            self.clear()
            if self.client.get(REDIS_OWNER_KEY) == self.token.encode():
                self.client.delete(REDIS_OWNER_KEY)
        finally:
            self.client.close()


# --- load ----------------------------------------------------------------------------------------------

def build_requests(chats: int, channels: int) -> list[bytes]:
    base = json.loads(FIXTURE.read_text())
    out = []
    for n in range(chats):
        i = n % channels
        b = copy.deepcopy(base)
        b["instanceData"]["idInstance"] = int(instance(i))
        b["instanceData"]["wid"] = f"2011{i:08d}@c.us"
        b["timestamp"] = int(time.time())
        b["idMessage"] = f"BENCHPIPE{uuid.uuid4().hex[:23].upper()}"
        b["senderData"]["chatId"] = b["senderData"]["sender"] = chat_id(n)
        b["senderData"]["chatName"] = b["senderData"]["senderName"] = f"Customer {n}"
        b["senderData"]["senderContactName"] = f"Customer {n}"
        b["messageData"]["textMessageData"]["textMessage"] = TEXT
        body = json.dumps(b).encode()
        head = (f"POST /webhooks/green-api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {webhook_token(i)}\r\nContent-Length: {len(body)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


async def post_all(port: int, requests: list[bytes], *, spread_s: float, concurrency: int):
    """POST request n at start + n × spread / N (keep-alive connections); returns send times, statuses, outcomes."""
    n_req = len(requests)
    sent_at: list[float] = [0.0] * n_req
    status: list[int] = [0] * n_req
    outcome: list[str] = [""] * n_req
    nxt = iter(range(n_req))
    start = time.monotonic() + 0.05

    async def exchange(reader, writer, raw: bytes) -> tuple[int, bytes, bool] | None:
        """One request on an open connection: (status, body, server closes); None if the server had closed it."""
        writer.write(raw)
        await writer.drain()
        line = await reader.readline()
        if not line:
            return None
        length, close = 0, False
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            elif k.lower() == "connection" and v.strip().lower() == "close":
                close = True
        body = await reader.readexactly(length)
        parts = line.split()
        return (int(parts[1]) if len(parts) > 1 else 0), body, close

    async def conn_loop():
        reader = writer = None
        for n in nxt:
            delay = start + n * spread_s / n_req - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[n] = time.monotonic()
            answer = None
            try:
                for _ in range(2):   # a kept-alive connection the server closed: once more on a new one
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    answer = await exchange(reader, writer, requests[n])
                    if answer is not None:
                        break
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError) as exc:
                status[n], outcome[n] = 0, type(exc).__name__
                if writer is not None:
                    writer.close()
                writer = None
                continue
            if answer is None:
                status[n], outcome[n] = 0, "connection closed without an answer"
                continue
            status[n], body, close = answer
            try:
                outcome[n] = str(json.loads(body).get("outcome", ""))
            except (ValueError, AttributeError):
                outcome[n] = body[:80].decode(errors="replace")
            if close:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(conn_loop() for _ in range(min(concurrency, n_req))))
    return sent_at, status, outcome


# --- processes -----------------------------------------------------------------------------------------

def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stop(proc: subprocess.Popen, first: int = signal.SIGTERM, wait_s: float = 15) -> None:
    """Stop one process started here: `first`, then SIGTERM, then SIGKILL."""
    for sig, wait in ((first, wait_s), (signal.SIGTERM, 5), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def stop_embedded_redis(data_dir: Path) -> None:
    """The app starts an embedded redis-server when no REDIS_URL is set; stop it if the app left it running."""
    pidfile = data_dir / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
        if "redis" in Path(f"/proc/{pid}/comm").read_text():
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(len(s) * p) - 1)]


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chats", type=int, default=500, help="customers, one first message each")
    ap.add_argument("--channels", type=int, default=50, help="Green API channels of the one agent")
    ap.add_argument("--processes", type=int, choices=(1, 2), default=1,
                    help="2: plus one `python -m execution.worker` on the same database and Redis")
    ap.add_argument("--timeout", type=float, default=600, help="seconds from the first webhook to give up")
    ap.add_argument("--spread", type=float, default=1.0, help="seconds over which the first messages arrive")
    ap.add_argument("--concurrency", type=int, default=64, help="HTTP connections posting the webhooks")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the last reply for duplicates")
    ap.add_argument("--gap-tolerance-ms", type=float, default=10.0,
                    help="timing jitter allowed below the interval before a gap counts as a pacing violation")
    ap.add_argument("--redis-db", type=int, default=14, help="Redis database index used with BENCH_REDIS_URL")
    args = ap.parse_args()
    if args.chats < 1 or args.channels < 1:
        ap.error("--chats and --channels must be at least 1")

    from execution.lib.directives import load_directives

    sending = load_directives()["message_sending_rules"]
    interval_ms = int(sending["send_interval_ms"].get("green_api", sending["default_send_interval_ms"]))
    burst_s = float(sending["burst_window_s"])
    limit_rps = args.channels * 1000 / interval_ms if interval_ms > 0 else float("inf")
    per_channel = math.ceil(args.chats / args.channels)
    ideal_s = burst_s + (per_channel - 1) * interval_ms / 1000

    print(f"command: {command_line()}")
    print(f"options: chats={args.chats} channels={args.channels} processes={args.processes} timeout={args.timeout:g}s "
          f"spread={args.spread:g}s concurrency={args.concurrency} "
          f"REPLY_WORKERS={os.environ.get('REPLY_WORKERS', '(default)')} "
          f"DB_POOL_MAX={os.environ.get('DB_POOL_MAX', '(default)')} cpus={os.cpu_count()}")
    print(f"directives: send_interval_ms.green_api={interval_ms} burst_window_s={burst_s:g} → pacing limit "
          f"{limit_rps:g} replies/s; best possible run ≈ {ideal_s:.1f}s ({per_channel} customers per channel)",
          flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    data_dir = tmp / "data"
    fake = FakeGreenApiFleet({instance(i): api_token(i) for i in range(args.channels)}).start()
    procs: dict[str, subprocess.Popen] = {}
    logs = {"web": tmp / "web.log", "worker": tmp / "worker.log"}
    redis_scope: RedisScope | None = None
    cleanup = None
    interrupted = False

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Handled (not ignored, as in a shell's background job), so Ctrl-C stops the bench and the children,
    # whose handlers exec resets to the default, can be stopped with SIGINT too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    res: dict = {}
    try:
        env = {**os.environ, "APP_ENV": "test", "RUN_WORKER": "true", "LOG_LEVEL": "WARNING",
               "APP_SECRET_KEY": APP_SECRET_KEY, "DATA_DIR": str(data_dir)}
        env.pop("REDIS_URL", None)
        if os.environ.get("BENCH_REDIS_URL"):
            redis_scope = RedisScope(os.environ["BENCH_REDIS_URL"], args.redis_db)
            redis_scope.claim(ttl_s=int(args.timeout) + 900)
            env["REDIS_URL"] = redis_scope.url

        port = free_port()
        for attempt in range(1, START_ATTEMPTS + 1):
            # Others edit the code while benches run: a start that fails (migrations, seeding, start-up) is retried.
            try:
                dsn, cleanup = scratch_database(tmp)
                seed(dsn, channels=args.channels, api_url=fake.url)
                env["DATABASE_URL"] = dsn
                with open(logs["web"], "ab") as out:
                    procs["web"] = subprocess.Popen(
                        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                         "--no-access-log", "--log-level", "warning", "main:app"],
                        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                wait_port(port, procs["web"], logs["web"])
                if args.processes == 2:
                    with open(logs["worker"], "ab") as out:
                        procs["worker"] = subprocess.Popen([sys.executable, "-m", "execution.worker"], cwd=ROOT,
                                                           env=env, stdout=out, stderr=subprocess.STDOUT)
                    time.sleep(2)   # its start-up (imports, pool, directives) before the load
                    if procs["worker"].poll() is not None:
                        raise SystemExit(f"worker exited with {procs['worker'].returncode}; its log "
                                         f"({logs['worker']}):\n{tail(logs['worker'])}")
                break
            except (SystemExit, Exception) as exc:
                for name in ("worker", "web"):
                    if name in procs:
                        stop(procs.pop(name))
                if cleanup is not None:
                    cleanup()
                    cleanup = None
                if attempt == START_ATTEMPTS:
                    raise
                print(f"start failed (attempt {attempt}/{START_ATTEMPTS}); retrying in {START_RETRY_WAIT_S}s: "
                      f"{type(exc).__name__}: {exc}", flush=True)
                time.sleep(START_RETRY_WAIT_S)

        requests = build_requests(args.chats, args.channels)
        expected = {chat_id(n): n for n in range(args.chats)}
        print(f"posting {args.chats} first messages over {args.spread:g}s ...", flush=True)
        sent_at, codes, outcomes = asyncio.run(post_all(port, requests, spread_s=args.spread,
                                                        concurrency=args.concurrency))
        t_first = min(sent_at)
        posted_in = max(sent_at) - t_first
        print(f"posted in {posted_in:.2f}s: status {dict(Counter(codes))}, outcome {dict(Counter(outcomes))}",
              flush=True)

        # Wait for the customers whose webhook was accepted; the others are reported, never waited for.
        awaited = {chat_id(n) for n in range(args.chats) if codes[n] == 200}
        if not awaited:
            print("no webhook was accepted: not waiting for replies", flush=True)
        deadline = t_first + args.timeout
        last_report = time.monotonic()
        answered: set[str] = set()
        died = None
        while awaited and time.monotonic() < deadline:
            answered = {s[3] for s in fake.snapshot() if s[3] in awaited and s[4] == 200}
            if len(answered) >= len(awaited):
                break
            for name, p in procs.items():
                if p.poll() is not None:
                    died = f"{name} process exited with {p.returncode}"
            if died:
                break
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(f"  {time.monotonic() - t_first:6.1f}s: {len(answered)}/{args.chats} customers answered, "
                      f"{len(fake.snapshot())} sends", flush=True)
            time.sleep(0.1)
        timed_out = len(answered) < len(awaited)
        if not died and awaited:
            time.sleep(args.settle)
        res["rss"] = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        res["db"] = db_summary(dsn)
        sends = fake.snapshot()
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every process started ...", flush=True)
    finally:
        # The extra worker answers SIGINT (KeyboardInterrupt) with a clean stop; uvicorn SIGTERM.
        if "worker" in procs:
            stop(procs["worker"], signal.SIGINT)
        if "web" in procs:
            stop(procs["web"])
        stop_embedded_redis(data_dir)
        fake.stop()
        if cleanup is not None:
            cleanup()
        if redis_scope is not None:
            redis_scope.release()
    if interrupted:
        print(f"interrupted; logs kept in {tmp}")
        return 130

    # --- results -----------------------------------------------------------------------------------------
    (tmp / "sends.json").write_text(json.dumps(
        {"first_webhook": t_first, "webhooks": {c: sent_at[n] for c, n in expected.items()},
         "sends": [{"t": t, "instance": i, "method": m, "chat": c, "status": st} for t, i, m, c, st in sends]}))
    problems: list[str] = []
    first_send: dict[str, float] = {}
    per_chat: dict[str, Counter] = defaultdict(Counter)
    per_channel_times: dict[str, list[float]] = defaultdict(list)
    methods: Counter = Counter()
    strangers: Counter = Counter()
    refused = 0
    for t, inst, method, chat, st in sends:
        if st != 200:
            refused += 1
            continue
        methods[method] += 1
        per_channel_times[inst].append(t)
        if chat not in expected:
            strangers[chat] += 1
            continue
        per_chat[chat][method] += 1
        first_send[chat] = min(first_send.get(chat, t), t)
    # Each reply must come on the customer's own channel.
    wrong_channel = sum(1 for t, inst, m, chat, st in sends
                        if st == 200 and chat in expected and inst != instance(expected[chat] % args.channels))

    missing = [c for c in expected if c not in first_send]
    dup = {c: dict(m) for c, m in per_chat.items() if sum(m.values()) > 1}
    latencies = [first_send[c] - sent_at[n] for c, n in expected.items() if c in first_send]
    # (gap ms, whether the send before it left late) for every pair of consecutive sends on a channel. The
    # send before left late when it was the channel's first, or the gap before it exceeded the interval by
    # at least this gap's shortfall: then the short gap is the late send catching up to the slot grid.
    gaps = []
    for ts in map(sorted, per_channel_times.values()):
        g = [(b - a) * 1000 for a, b in zip(ts, ts[1:])]
        for k, gap in enumerate(g):
            late = k == 0 or g[k - 1] - interval_ms >= (interval_ms - gap) - args.gap_tolerance_ms
            gaps.append((gap, late))
    min_gap_ms = min(g for g, _ in gaps) if gaps else None
    below = [(g, first) for g, first in gaps if g < interval_ms]
    violations = [(g, first) for g, first in below if g < interval_ms - args.gap_tolerance_ms]
    last_reply = max(first_send.values()) if first_send else None
    run_s = (last_reply - t_first) if last_reply else None
    rps = len(first_send) / run_s if run_s else 0.0

    bad_codes = {k: v for k, v in Counter(codes).items() if k != 200}
    stored = res["db"].get("webhook_events", {})
    if bad_codes:
        problems.append(f"webhooks not answered 200: {bad_codes}")
    if sum(v for k, v in stored.items() if k != "error") != args.chats:
        problems.append(f"webhook_events rows {stored} ≠ {args.chats} webhooks posted")
    if missing and not timed_out:
        problems.append(f"{len(missing)} customers never answered (e.g. {missing[:3]})")
    if dup:
        problems.append(f"{len(dup)} customers got more than one send (e.g. {dict(list(dup.items())[:3])})")
    if strangers:
        problems.append(f"sends to chats that never wrote: {dict(strangers)}")
    if wrong_channel:
        problems.append(f"{wrong_channel} sends went out on another channel than the customer's")
    if refused:
        problems.append(f"{refused} calls the fake refused (unknown instance or wrong token)")
    if violations:
        problems.append(f"{len(violations)} of {len(gaps)} gaps between two sends on one channel are below "
                        f"{interval_ms} ms by more than {args.gap_tolerance_ms:g} ms (smallest {min_gap_ms:.1f} ms; "
                        f"{sum(1 for _, late in violations if late)} of them right after a send that left late)")
    if died:
        problems.append(died)

    print()
    rows = [
        ("customers answered", f"{len(first_send)}/{args.chats}" + ("  (TIMED OUT)" if timed_out else "")),
        ("run (first webhook → last reply)", fmt_s(run_s)),
        ("replies/s", f"{rps:.2f}"),
        ("pacing limit (replies/s)", f"{limit_rps:g}  ({args.channels} channels × 1000 / {interval_ms} ms)"),
        ("measured / limit", f"{rps / limit_rps:.1%}" if limit_rps and rps else "-"),
        ("best possible run", f"≈ {ideal_s:.1f}s  (burst {burst_s:g}s + {per_channel - 1} × {interval_ms} ms)"),
        ("webhook → first send p50", fmt_s(statistics.median(latencies)) if latencies else "-"),
        ("webhook → first send p95", fmt_s(pct(latencies, 0.95)) if latencies else "-"),
        ("webhook → first send max", fmt_s(max(latencies)) if latencies else "-"),
        ("webhooks posted in", f"{posted_in:.2f}s  (status {dict(Counter(codes))})"),
        ("burst window", f"{burst_s:g}s"),
        ("sends by method", dict(methods)),
        ("one reply per customer", "yes" if not dup and not missing and not strangers
         else f"NO: {len(missing)} missing, {len(dup)} duplicated, {sum(strangers.values())} to strangers"),
        ("min gap on one channel", (f"{min_gap_ms:.1f} ms" if min_gap_ms is not None else "- (≤ 1 send per channel)")
         + f"  (interval {interval_ms} ms; {len(below)}/{len(gaps)} gaps below it, {len(violations)} by more than "
           f"{args.gap_tolerance_ms:g} ms" + (f", {sum(1 for _, late in violations if late)} of those right "
                                              f"after a late send)" if violations else ")")),
    ]
    for name, mb in res["rss"].items():
        rows.append((f"peak RSS {name} (VmHWM)", f"{mb:.0f} MB" if mb is not None else "-"))
    for label, counts in res["db"].items():
        rows.append((f"db {label}", counts))
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':{width}s}  value")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:{width}s}  {v}")

    logged = False
    for key, path in logs.items():
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        if text:
            logged = True
            print(f"\n{key} log ({path}), {len(text.splitlines())} lines, last ones:\n{tail(path, 25)}")
    if not logged and not problems and not timed_out:
        shutil.rmtree(tmp, ignore_errors=True)  # kept, with its logs, when there is something to look at

    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
        return 2
    if timed_out:
        print(f"\nTIMED OUT after {args.timeout:g}s with {len(first_send)}/{args.chats} answered")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
