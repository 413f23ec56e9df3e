"""Webhook intake throughput and latency against a bare FastAPI endpoint, in the same run.

Starts two uvicorn servers on 127.0.0.1: the real app (auth, durable INSERT, commit) and a bare
endpoint that only parses the JSON. Drives each with the same keep-alive HTTP/1.1 load at
CONCURRENCY connections and prints requests/s, p50 and p99 and the ratios.
Target: real ≥ 0.5 × bare requests/s, real p99 ≤ 3 × bare p99.

usage: python bench/webhook_ack.py [--requests 4000] [--concurrency 32]
Uses BENCH_DATABASE_URL / BENCH_REDIS_URL when set (a maintenance database; a scratch database is
created and dropped), else embedded PostgreSQL and Redis in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_database  # noqa: E402

BARE_APP = '''
import json
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
app = FastAPI()
@app.post("/webhooks/green-api")
async def hook(request: Request):
    json.loads(await request.body())
    return JSONResponse({"ok": True})
'''
TOKEN = "bench-webhook-token"
INSTANCE = "1109000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def bodies(n: int) -> list[bytes]:
    base = json.loads((ROOT / "tests/fixtures/green_api/greenapi_incoming_text.json").read_text())
    base["instanceData"]["idInstance"] = int(INSTANCE)
    out = []
    for i in range(n):
        base["idMessage"] = f"BENCH{uuid.uuid4().hex[:20].upper()}"
        base["senderData"]["chatId"] = f"1555{i % 500:07d}@c.us"
        out.append(json.dumps(base).encode())
    return out


async def drive(port: int, payloads: list[bytes], concurrency: int) -> tuple[float, list[float], dict]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    latencies: list[float] = []
    codes: dict[int, int] = {}

    async def conn_loop():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            head = (f"POST /webhooks/green-api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            t0 = time.perf_counter()
            writer.write(head + body)
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
            code = int(status_line.split()[1])
            codes[code] = codes.get(code, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn_loop() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, codes


def measure(port: int, n: int, concurrency: int) -> dict:
    asyncio.run(drive(port, bodies(min(300, n)), concurrency))  # warm-up
    elapsed, lat, codes = asyncio.run(drive(port, bodies(n), concurrency))
    lat.sort()
    return {
        "rps": n / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p90_ms": lat[int(len(lat) * 0.90) - 1] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        "max_ms": lat[-1] * 1000,
        "codes": codes,
    }


def prepare_database(tmp: Path) -> tuple[str, callable]:
    from execution.lib import tenant_store
    from execution.lib.db import connect, transaction
    from execution.lib.security import hash_token

    dsn, cleanup = scratch_database(tmp)
    c = connect(dsn)
    with transaction(c):
        org = tenant_store.upsert_organization(c, slug="bench", name="Bench")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email="bench@bench.example", name="B",
                                   password_hash=None)
        tenant_store.upsert_channel(c, organization_id=org["id"], agent_id=agent["id"], provider="green_api",
                             instance_id=INSTANCE, webhook_token_hash=hash_token(TOKEN))
    c.close()
    return dsn, cleanup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    dsn, cleanup = prepare_database(tmp)
    procs = []
    try:
        (tmp / "bare_app.py").write_text(BARE_APP)
        bare_port, real_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "APP_ENV": "test", "RUN_WORKER": "false", "LOG_LEVEL": "WARNING",
               "APP_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789", "DATA_DIR": str(tmp / "data"),
               "DB_POOL_MAX": "40"}
        if os.environ.get("BENCH_REDIS_URL"):
            env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        uv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
        procs.append(subprocess.Popen(uv + ["--port", str(bare_port), "--app-dir", str(tmp), "bare_app:app"], env=env))
        procs.append(subprocess.Popen(uv + ["--port", str(real_port), "main:app"], cwd=ROOT, env=env))
        wait_port(bare_port)
        wait_port(real_port)
        bare = measure(bare_port, args.requests, args.concurrency)
        real = measure(real_port, args.requests, args.concurrency)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        cleanup()
    for name, r in (("bare endpoint", bare), ("webhook intake", real)):
        print(f"{name:15s} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.2f}  p90 {r['p90_ms']:6.2f}  "
              f"p99 {r['p99_ms']:6.2f}  max {r['max_ms']:7.2f} ms  {r['codes']}")
    rps_ratio = real["rps"] / bare["rps"]
    p99_ratio = real["p99_ms"] / bare["p99_ms"]
    print(f"ratio: throughput {rps_ratio:.2f}x of bare (target >= 0.5), p99 {p99_ratio:.2f}x of bare (target <= 3)")
    ok = rps_ratio >= 0.5 and p99_ratio <= 3 and set(real["codes"]) == {200}
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
