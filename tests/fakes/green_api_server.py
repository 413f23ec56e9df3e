"""A fake Green API on 127.0.0.1 speaking the real wire format: records requests, answers on demand."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PATH = re.compile(r"^/waInstance(?P<instance>[^/]+)/(?P<method>[A-Za-z]+)/(?P<token>[^/?]+)")


class FakeGreenApi:
    def __init__(self, *, instance_id: str = "1101000001", token: str = "test-api-token-not-real") -> None:
        self.instance_id = instance_id
        self.token = token
        self.requests: list[dict] = []
        self._plans: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        self._count = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                status, body, _ = fake._journal(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, delay = fake._answer(self.path, raw)
                if delay:
                    time.sleep(delay)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeGreenApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def plan(self, method: str, *answers) -> None:
        """Queue answers for `method`: an int status, ("slow", seconds), or (status, body)."""
        with self._lock:
            self._plans[method].extend(answers)

    def calls(self, method: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if method is None or r["method"] == method]

    def _journal(self, path: str):
        """lastOutgoingMessages (what was sent, newest first) and showMessagesQueue (always empty here)."""
        m = _PATH.match(path)
        if not m or m["token"] != self.token:
            return 401, {"error": "Unauthorized"}, 0
        if m["method"] == "showMessagesQueue":
            return 200, [], 0
        if m["method"] != "lastOutgoingMessages":
            return 404, {"error": "not found"}, 0
        with self._lock:
            sent = [r for r in self.requests if r["method"] == "sendMessage" and r.get("id_message")]
        return 200, [{"type": "outgoing", "idMessage": r["id_message"], "timestamp": int(r["at"]),
                      "statusMessage": "sent", "typeMessage": "textMessage", "chatId": r["body"].get("chatId"),
                      "textMessage": r["body"].get("message"), "sendByApi": True} for r in reversed(sent)], 0

    def _answer(self, path: str, raw: bytes):
        m = _PATH.match(path)
        if not m:
            return 404, {"error": "not found"}, 0
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"error": "Bad Request Validation failed"}, 0
        with self._lock:
            request = {"method": m["method"], "instance": m["instance"], "token_ok": m["token"] == self.token,
                       "body": body, "at": time.time()}
            self.requests.append(request)
            if m["instance"] != self.instance_id:
                return 403, {"error": "Forbidden"}, 0
            if m["token"] != self.token:
                return 401, {"error": "Unauthorized"}, 0
            plan = self._plans[m["method"]]
            answer = plan.popleft() if plan else 200
            self._count += 1
            msg_id = f"FAKE{self._count:016X}"
            if answer == 200 or (isinstance(answer, tuple) and answer[0] == "slow"):
                request["id_message"] = msg_id      # it went out: the journal will show it
        if isinstance(answer, tuple) and answer[0] == "slow":
            return 200, {"idMessage": msg_id}, answer[1]
        if isinstance(answer, tuple):
            return answer[0], answer[1], 0
        if answer == 200:
            return 200, {"idMessage": msg_id}, 0
        if answer == 466:
            return 466, {"correspondentsStatus": {"status": "CORRESPONDENTS_QUOTE_EXCEEDED", "used": 3, "total": 3}}, 0
        return answer, {"error": f"status {answer}"}, 0
