"""Webhook intake throughput and latency, Green API and Meta, each against a bare FastAPI endpoint in the same run.

Starts two uvicorn servers on 127.0.0.1: the real app (authentication, durable INSERT, commit) and a
bare endpoint that only parses the JSON (it verifies nothing). For each provider, drives the bare
endpoint and then the real one with the same keep-alive HTTP/1.1 load at CONCURRENCY connections
and the same kind of requests, and prints requests/s, p50 and p99 and the ratios real/bare.
  Green API: POST /webhooks/green-api, `Authorization: Bearer <token>`, one idMessage per request.
  Meta:      POST /webhooks/meta, `X-Hub-Signature-256: sha256=<HMAC of the raw body with the app
             secret>`, one wamid and one customer per request (500 customers in rotation).
Target, per provider: real ≥ 0.5 × bare requests/s, real p99 ≤ 3 × bare p99.
Checked, so the figures are of real durable writes: every request (warm-up included) got 200, and
the stored webhook_events rows of each provider equal the requests sent to the real app; a
mismatch is reported and the exit status is non-zero.

usage: python bench/webhook_ack.py [--provider green-api|meta|both] [--requests 4000] [--concurrency 32]
Uses BENCH_DATABASE_URL / BENCH_REDIS_URL when set (a maintenance database; a scratch database is
created and dropped), else embedded PostgreSQL and Redis in a temporary directory.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
import asyncio
import hashlib
import hmac
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_database  # noqa: E402

BARE_APP = '''
import json
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
app = FastAPI()
@app.post("/webhooks/{route}")
async def hook(route: str, request: Request):
    json.loads(await request.body())
    return JSONResponse({"ok": True})
'''
APP_SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
TOKEN = "bench-webhook-token"                  # Green API: the channel's webhook bearer token
INSTANCE = "1109000001"                        # Green API: idInstance
META_APP_SECRET = "bench-meta-app-secret-0123456789abcdef"
META_PHONE_NUMBER_ID = "109000000000001"       # Meta: phone_number_id = channels.instance_id
META_TS = str(int(time.time()))
CUSTOMERS = 500
WARMUP = 300
TARGET_RPS_RATIO = 0.5
TARGET_P99_RATIO = 3.0


class Provider(ABC):
    """One provider under test: its route, its stored provider name and how it builds a request."""

    label = ""
    route = ""
    stored_as = ""

    @abstractmethod
    def body(self, i: int) -> bytes:
        """The i-th webhook body (a unique message id)."""

    @abstractmethod
    def headers(self, body: bytes) -> str:
        """The provider's authentication header lines for this body."""

    def requests(self, n: int) -> list[bytes]:
        """n complete requests, each with a body of its own (unique message id), built before the clock starts."""
        out = []
        for i in range(n):
            body = self.body(i)
            head = (f"POST /webhooks/{self.route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"{self.headers(body)}Content-Length: {len(body)}\r\n\r\n")
            out.append(head.encode() + body)
        return out


class GreenApi(Provider):
    label, route, stored_as = "green-api", "green-api", "green_api"

    def __init__(self) -> None:
        self.base = json.loads((ROOT / "tests/fixtures/green_api/greenapi_incoming_text.json").read_text())
        self.base["instanceData"]["idInstance"] = int(INSTANCE)

    def body(self, i: int) -> bytes:
        b = self.base
        b["idMessage"] = f"BENCH{uuid.uuid4().hex[:20].upper()}"
        b["senderData"]["chatId"] = b["senderData"]["sender"] = f"1555{i % CUSTOMERS:07d}@c.us"
        return json.dumps(b).encode()

    def headers(self, body: bytes) -> str:
        return f"Authorization: Bearer {TOKEN}\r\n"


class Meta(Provider):
    label, route, stored_as = "meta", "meta", "meta_cloud"

    def __init__(self) -> None:
        self.base = json.loads((ROOT / "tests/fixtures/meta/meta_text.json").read_text())
        self.value = self.base["entry"][0]["changes"][0]["value"]
        self.value["metadata"]["phone_number_id"] = META_PHONE_NUMBER_ID

    def body(self, i: int) -> bytes:
        customer = f"1556{i % CUSTOMERS:07d}"
        self.value["contacts"][0]["wa_id"] = customer
        self.value["contacts"][0]["profile"]["name"] = f"Bench Customer {i % CUSTOMERS}"
        message = self.value["messages"][0]
        message["from"] = customer
        message["id"] = f"wamid.BENCH{uuid.uuid4().hex.upper()}"
        message["timestamp"] = META_TS
        return json.dumps(self.base).encode()

    def headers(self, body: bytes) -> str:
        signature = hmac.new(META_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return f"X-Hub-Signature-256: sha256={signature}\r\n"


PROVIDERS = {"green-api": GreenApi, "meta": Meta}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode} before listening; its log "
                             f"({log}):\n{tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start within {timeout:g}s; its log ({log}):\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def drive(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], dict]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    latencies: list[float] = []
    codes: dict[int, int] = {}

    async def conn_loop():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            try:
                raw = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            t0 = time.perf_counter()
            writer.write(raw)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            parts = status_line.split()
            code = int(parts[1]) if len(parts) > 1 else 0   # 0: the connection closed without an answer
            codes[code] = codes.get(code, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn_loop() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, codes


def measure(port: int, provider: Provider, n: int, concurrency: int) -> dict:
    warm = min(WARMUP, n)
    _, _, warm_codes = asyncio.run(drive(port, provider.requests(warm), concurrency))
    elapsed, lat, codes = asyncio.run(drive(port, provider.requests(n), concurrency))
    lat.sort()
    return {
        "sent": warm + n,
        "rps": n / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p90_ms": lat[int(len(lat) * 0.90) - 1] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        "max_ms": lat[-1] * 1000,
        "codes": codes,
        "warm_codes": warm_codes,
        "answered": sum(codes.values()) + sum(warm_codes.values()),
    }


def stored_rows(dsn: str) -> dict[str, int]:
    from execution.lib.db import connect

    c = connect(dsn)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT provider, count(*) AS n FROM webhook_events GROUP BY provider")
            return {r["provider"]: int(r["n"]) for r in cur.fetchall()}
    finally:
        c.close()


def prepare_database(tmp: Path) -> tuple[str, callable]:
    from execution.lib import tenant_store
    from execution.lib.db import connect, transaction
    from execution.lib.security import encrypt_secret, hash_token

    dsn, cleanup = scratch_database(tmp)
    c = connect(dsn)
    with transaction(c):
        org = tenant_store.upsert_organization(c, slug="bench", name="Bench")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email="bench@bench.example", name="B",
                                          password_hash=None)
        tenant_store.upsert_channel(c, organization_id=org["id"], agent_id=agent["id"], provider="green_api",
                                    instance_id=INSTANCE, webhook_token_hash=hash_token(TOKEN))
        tenant_store.upsert_channel(c, organization_id=org["id"], agent_id=agent["id"], provider="meta_cloud",
                                    instance_id=META_PHONE_NUMBER_ID,
                                    webhook_secret_encrypted=encrypt_secret(APP_SECRET_KEY, META_APP_SECRET))
    c.close()
    return dsn, cleanup


def _redact(value: str) -> str:
    """A URL with its password replaced by ***."""
    try:
        parts = urlsplit(value)
        if parts.password:
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        pass
    return value


def command_line() -> str:
    env = [f"{k}={shlex.quote(_redact(os.environ[k]))}" for k in ("BENCH_DATABASE_URL", "BENCH_REDIS_URL")
           if os.environ.get(k)]
    return " ".join([f"cd {shlex.quote(os.getcwd())} &&", *env, shlex.quote(sys.executable),
                     *map(shlex.quote, sys.argv)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider", choices=("green-api", "meta", "both"), default="both")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    names = list(PROVIDERS) if args.provider == "both" else [args.provider]
    print(f"command: {command_line()}")
    print(f"options: provider={args.provider} requests={args.requests} (+{min(WARMUP, args.requests)} warm-up) "
          f"concurrency={args.concurrency} customers={CUSTOMERS} cpus={os.cpu_count()}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    dsn, cleanup = prepare_database(tmp)
    procs: list[subprocess.Popen] = []
    logs = {"bare": tmp / "bare.log", "real": tmp / "real.log"}
    results: dict[str, dict] = {}
    rows: dict[str, int] = {}
    try:
        (tmp / "bare_app.py").write_text(BARE_APP)
        bare_port, real_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "APP_ENV": "test", "RUN_WORKER": "false", "LOG_LEVEL": "WARNING",
               "APP_SECRET_KEY": APP_SECRET_KEY, "DATA_DIR": str(tmp / "data"), "DB_POOL_MAX": "40"}
        if os.environ.get("BENCH_REDIS_URL"):
            env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        uv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
        for key, cmd, cwd in (("bare", ["--port", str(bare_port), "--app-dir", str(tmp), "bare_app:app"], None),
                              ("real", ["--port", str(real_port), "main:app"], ROOT)):
            with open(logs[key], "wb") as out:
                procs.append(subprocess.Popen(uv + cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT))
        wait_port(bare_port, procs[0], logs["bare"])
        wait_port(real_port, procs[1], logs["real"])
        for name in names:
            provider = PROVIDERS[name]()
            print(f"running {name}: bare endpoint ...", flush=True)
            bare = measure(bare_port, provider, args.requests, args.concurrency)
            print(f"running {name}: webhook intake ...", flush=True)
            real = measure(real_port, provider, args.requests, args.concurrency)
            results[name] = {"provider": provider, "bare": bare, "real": real}
        rows = stored_rows(dsn)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cleanup()

    problems: list[str] = []
    print()
    head = (f"{'provider':10s} {'endpoint':15s} {'req/s':>8s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} "
            f"{'max ms':>8s}  status codes (measured; warm-up)")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        for label, m in (("bare endpoint", r["bare"]), ("webhook intake", r["real"])):
            print(f"{name:10s} {label:15s} {m['rps']:8.0f} {m['p50_ms']:8.2f} {m['p90_ms']:8.2f} {m['p99_ms']:8.2f} "
                  f"{m['max_ms']:8.2f}  {m['codes']}; {m['warm_codes']}")
            if set(m["codes"]) | set(m["warm_codes"]) != {200} or m["answered"] != m["sent"]:
                problems.append(f"{name} {label}: {m['sent']} requests sent, {m['answered']} answered, status codes "
                                f"{m['codes']} (warm-up {m['warm_codes']}); every one must be 200")
        stored = rows.get(r["provider"].stored_as, 0)
        r["stored"] = stored
        if stored != r["real"]["sent"]:
            problems.append(f"{name}: {r['real']['sent']} requests sent to the webhook intake but {stored} "
                            f"webhook_events rows stored for provider {r['provider'].stored_as!r}")
    print()
    head = (f"{'provider':10s} {'bare req/s':>10s} {'real req/s':>10s} {'req/s ratio':>12s} {'bare p99':>9s} "
            f"{'real p99':>9s} {'p99 ratio':>10s} {'rows/requests':>15s}  result")
    print(head)
    print("-" * len(head))
    all_ok = True
    for name, r in results.items():
        bare, real = r["bare"], r["real"]
        rps_ratio = real["rps"] / bare["rps"]
        p99_ratio = real["p99_ms"] / bare["p99_ms"]
        rps_ok, p99_ok = rps_ratio >= TARGET_RPS_RATIO, p99_ratio <= TARGET_P99_RATIO
        durable_ok = r["stored"] == real["sent"] and set(real["codes"]) | set(real["warm_codes"]) == {200}
        ok = rps_ok and p99_ok and durable_ok
        all_ok &= ok
        print(f"{name:10s} {bare['rps']:10.0f} {real['rps']:10.0f} "
              f"{rps_ratio:6.2f} {'ok' if rps_ok else 'MISS':>5s} {bare['p99_ms']:7.2f}ms {real['p99_ms']:7.2f}ms "
              f"{p99_ratio:5.2f} {'ok' if p99_ok else 'MISS':>4s} {r['stored']:>7d}/{real['sent']:<7d}  "
              f"{'PASS' if ok else 'FAIL'}")
    print(f"targets: real req/s >= {TARGET_RPS_RATIO} x bare; real p99 <= {TARGET_P99_RATIO:g} x bare p99; "
          f"every request 200; stored webhook_events rows = requests sent to the intake (warm-up included)")

    logged = False
    for key, path in logs.items():
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        if text:
            logged = True
            print(f"\n{key} server log ({path}), last lines:\n{tail(path)}")
    if not logged and not problems:
        shutil.rmtree(tmp, ignore_errors=True)  # kept, with its logs, when there is something to look at
    if problems:
        print("\n" + "!" * 78)
        print("NOT DURABLE / NOT ALL 200 — the figures above do not measure what they claim:")
        for p in problems:
            print(f"  - {p}")
        print("!" * 78)
        return 2
    print("\nPASS" if all_ok else "\nMISS")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
