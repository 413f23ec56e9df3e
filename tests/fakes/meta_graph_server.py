"""A fake Meta Graph API (`/{version}/{phone_number_id}/messages`) on 127.0.0.1: records requests, answers on demand."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PATH = re.compile(r"^/(?P<version>v\d+\.\d+)/(?P<number>[^/?]+)/messages/?(?:\?.*)?$")

# code -> (HTTP status, title, details) as Meta answers them
ERRORS: dict[int, tuple[int, str, str]] = {
    1: (500, "An unknown error occurred", "An unknown error occurred"),
    2: (500, "Service temporarily unavailable", "Service temporarily unavailable"),
    4: (400, "Application request limit reached", "Too many API calls from this app"),
    100: (400, "Invalid parameter", "Parameter value is not valid"),
    190: (401, "Error validating access token: Session has expired", "The access token has expired"),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit"),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached"),
    131026: (400, "Message undeliverable", "Message Undeliverable."),
    131047: (400, "Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the customer last replied to this "
             "number."),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a short "
             "period of time"),
}
_STATUS_CODES = {400: 100, 401: 190, 429: 130429, 500: 1, 503: 2}


def error_body(code: int, *, trace: str = "AFakeTraceId0001") -> tuple[int, dict]:
    """(HTTP status, body) of a Graph error in Meta's real shape."""
    status, title, details = ERRORS.get(code, (400, "Unknown error", "Unknown error"))
    error: dict = {"message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
                   "error_data": {"messaging_product": "whatsapp", "details": details}, "fbtrace_id": trace}
    if code == 190:
        error = {"message": title, "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": trace}
    return status, {"error": error}


class FakeGraphApi:
    def __init__(self, *, phone_number_id: str = "100000000000001", token: str = "test-meta-access-token-not-real",
                 api_version: str = "v21.0") -> None:
        self.phone_number_id = phone_number_id
        self.token = token
        self.api_version = api_version
        self.requests: list[dict] = []
        self._plan: deque = deque()
        self._lock = threading.Lock()
        self._count = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, delay = fake._answer(self.path, self.headers.get("Authorization"), raw)
                if delay:
                    time.sleep(delay)
                if status is None:  # "drop": close the connection without an answer
                    self.close_connection = True
                    return
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
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.api_version}"

    def start(self) -> "FakeGraphApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def plan(self, *answers) -> None:
        """Queue answers: 200, an int status, ("error", code), ("slow", seconds), ("drop",) or (status, body)."""
        with self._lock:
            self._plan.extend(answers)

    def calls(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    def _ok(self, to) -> dict:
        self._count += 1
        wamid = f"wamid.FAKE{self._count:032X}"
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}

    def _answer(self, path: str, authorization: str | None, raw: bytes):
        m = _PATH.match(path)
        if not m or m["version"] != self.api_version:
            return 404, {"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500}}, 0
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return (*error_body(100), 0)
        token_ok = authorization == f"Bearer {self.token}"
        with self._lock:
            self.requests.append({"path": path, "phone_number_id": m["number"], "authorization": authorization,
                                  "token_ok": token_ok, "body": body})
            if not token_ok:
                return (*error_body(190), 0)
            if m["number"] != self.phone_number_id:
                return 400, {"error": {"message": f"Unsupported post request. Object with ID '{m['number']}' does "
                                                  "not exist", "type": "GraphMethodException", "code": 100,
                                       "error_subcode": 33, "fbtrace_id": "AFakeTraceId0002"}}, 0
            answer = self._plan.popleft() if self._plan else 200
            ok = self._ok(body.get("to") if isinstance(body, dict) else None)
        if answer == 200:
            return 200, ok, 0
        if isinstance(answer, int):  # that status with the error body Meta sends with it
            return answer, error_body(_STATUS_CODES.get(answer, 1 if answer >= 500 else 100))[1], 0
        if answer[0] == "error":
            return (*error_body(answer[1]), 0)
        if answer[0] == "slow":
            return 200, ok, answer[1]
        if answer[0] == "drop":
            return None, None, 0
        return answer[0], answer[1], 0
