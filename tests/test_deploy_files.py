"""The service files in deploy/: systemd accepts every unit, the commands accept their command lines, and
nginx accepts the site, which agrees with the app on its routes and body limits; run in front of a
stand-in app, the site redirects http, forwards the client and the scheme, caps bodies where the app
does, and passes live updates unbuffered.

systemd-analyze and nginx must be installed (./quickstart.sh test installs nginx on Debian as root): a
missing tool fails these tests with how to install it, never skips them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "deploy" / "systemd"
SITE = ROOT / "deploy" / "nginx" / "wa-assistant.conf"
UNITS = ("wa-assistant-web.service", "wa-assistant-worker@.service", "wa-assistant-migrate.service")
INSTALL_DIR = "/opt/wa-assistant"
CERT = "/etc/letsencrypt/live/assistant.example.com/fullchain.pem"
KEY = "/etc/letsencrypt/live/assistant.example.com/privkey.pem"


def tool(name: str, how: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail(f"{name} is not installed, and these tests need it: {how}")
    return found


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections, each a list of (key, value) in order (systemd allows a key more than once)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(name: str, section: str, key: str) -> list[str]:
    return [v for k, v in unit(name)[section] if k == key]


def installed_copies(dst: Path) -> Path:
    """The units with their paths pointed at ones that exist here: an install dir with a .env, this venv's python."""
    install = dst / "opt"
    install.mkdir(parents=True)
    (install / ".env").write_text("APP_ENV=production\n")
    units = dst / "units"
    units.mkdir()
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        text = text.replace(f"{INSTALL_DIR}/.venv/bin/python", sys.executable).replace(INSTALL_DIR, str(install))
        (units / name).write_text(text)
    return units


def verify(units: Path, names: list[str]) -> tuple[int, list[str]]:
    """`systemd-analyze verify` of these units (a template through one instance); the lines about our units."""
    analyze = tool("systemd-analyze", "apt-get install systemd")
    done = subprocess.run([analyze, "verify", *[str(units / n.replace("@.", "@1.")) for n in names]],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "SYSTEMD_PAGER": ""})
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "wa-assistant" in line]
    return done.returncode, ours


def test_systemd_accepts_every_unit(tmp_path):
    units = installed_copies(tmp_path)
    code, lines = verify(units, list(UNITS))
    assert code == 0 and lines == [], "\n".join(lines)
    # The check sees a mistake: the same unit with a misspelt key.
    broken = units / "wa-assistant-migrate.service"
    broken.write_text(broken.read_text().replace("RemainAfterExit=", "RemainAfterExits="))
    code, lines = verify(units, ["wa-assistant-migrate.service"])
    assert any("RemainAfterExits" in line for line in lines), lines


def test_the_units_run_the_commands_as_documented():
    web = " ".join(values("wa-assistant-web.service", "Service", "ExecStart"))
    assert re.search(r"/\.venv/bin/python -m execution\.serve .*--workers \d+", web)
    assert "--proxy-headers" in web and "--forwarded-allow-ips 127.0.0.1" in web
    # The app reads .env itself and the environment wins over it; an EnvironmentFile= would win over
    # Environment= instead, and the .env's RUN_WORKER=true would run the worker in every web process.
    assert "RUN_WORKER=false" in values("wa-assistant-web.service", "Service", "Environment")
    for name in UNITS:
        service = dict(unit(name)["Service"])
        assert values(name, "Service", "EnvironmentFile") == [], name
        assert service["User"] == "wa-assistant" and service["WorkingDirectory"] == INSTALL_DIR, name
        assert service["Restart"] == "on-failure", name
        assert {("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")} <= set(
            unit(name)["Service"]), name
        assert service["ReadWritePaths"] == "/var/lib/wa-assistant", name
    assert values("wa-assistant-worker@.service", "Service", "ExecStart")[0].endswith(" -m execution.worker")
    migrate = dict(unit("wa-assistant-migrate.service")["Service"])
    assert migrate["Type"] == "oneshot" and migrate["RemainAfterExit"] == "yes"
    assert migrate["ExecStart"].endswith(" -m execution.migrate")
    for name in ("wa-assistant-web.service", "wa-assistant-worker@.service"):
        assert "wa-assistant-migrate.service" in " ".join(values(name, "Unit", "After"))
        assert "wa-assistant-migrate.service" not in " ".join(values(name, "Unit", "Requires"))


@pytest.mark.parametrize("name, refused", [("wa-assistant-web.service", 3), ("wa-assistant-worker@.service", 78),
                                           ("wa-assistant-migrate.service", 78)])
def test_each_command_line_is_accepted_by_its_command(name, refused):
    """The unit's arguments parse (a bad one would exit 2); the settings are then refused on purpose."""
    argv = values(name, "Service", "ExecStart")[0].split()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_"))}
    env["APP_ENV"] = "not-an-environment"
    done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == refused, done.stderr[-2000:]
    assert "APP_ENV must be one of" in done.stderr


# ------------------------------------------------------------------ nginx


def self_signed(dst: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assistant.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("assistant.example.com"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = dst / "fullchain.pem", dst / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def nginx_prefix(dst: Path, site_text: str, *, extra_main: str = "") -> Path:
    """A main nginx.conf in `dst` that includes `site_text` as Debian's does, with every path its own."""
    cert, key = self_signed(dst)
    (dst / "logs").mkdir()
    site = dst / "wa-assistant.conf"
    site.write_text(site_text.replace(CERT, str(cert)).replace(KEY, str(key)))
    temp = " ".join(f"{kind}_temp_path {dst / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = dst / "nginx.conf"
    conf.write_text(f"pid {dst / 'nginx.pid'};\nerror_log {dst / 'logs/error.log'};\n{extra_main}\n"
                    f"events {{ worker_connections 64; }}\n"
                    f"http {{\n  access_log {dst / 'logs/access.log'};\n  {temp}\n  include {site};\n}}\n")
    return conf


def nginx(conf: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    binary = tool("nginx", "as root on Debian: apt-get install nginx (./quickstart.sh test does it)")
    return subprocess.run([binary, "-c", str(conf), "-p", f"{conf.parent}/", "-e", str(conf.parent / "logs/error.log"),
                           *args], capture_output=True, text=True, **kw)


def test_nginx_accepts_the_site(tmp_path):
    done = nginx(nginx_prefix(tmp_path, SITE.read_text()), "-t", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def _block(text: str, opening: str) -> str:
    """The body of the block that starts with `opening` (balanced braces)."""
    start = text.index(opening)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    raise AssertionError(f"unbalanced block after {opening!r}")


def _size(value: str) -> int:
    number, unit_ = re.fullmatch(r"(\d+)([kKmM]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit_.lower()]


def test_the_site_agrees_with_the_app_on_routes_and_limits():
    from execution.lib.providers.base import MAX_BODY_BYTES
    from execution.web import events, listings

    text = re.sub(r"#.*", "", SITE.read_text())
    http, https = [_block(text[m.start():], "server") for m in re.finditer(r"^server\s*\{", text, re.M)]
    assert "listen 80;" in http and "listen 443 ssl" in https
    [sse_path] = [r.path for r in events.router.routes if "event-stream" in str(getattr(r, "responses", ""))]
    sse = _block(https, f"location = {sse_path}")
    assert re.search(r"proxy_buffering\s+off;", sse) and re.search(r"proxy_read_timeout\s+(\d+)h;", sse)
    assert re.search(r"proxy_http_version\s+1\.1;", https) and re.search(r'proxy_set_header\s+Connection\s+"";', https)
    for header in ("Host", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert re.search(rf"proxy_set_header\s+{header}\s+\$", https), header
    default_limit = _size(re.search(r"^\s*client_max_body_size\s+(\w+);", https, re.M).group(1))
    assert MAX_BODY_BYTES <= default_limit < 2 * MAX_BODY_BYTES
    imports = _block(https, f"location = {listings.router.prefix}/import")
    assert listings.MAX_UPLOAD < _size(re.search(r"client_max_body_size\s+(\w+);", imports).group(1))
    webhooks = _block(https, "location /webhooks/")
    assert int(re.search(r"proxy_read_timeout\s+(\d+)s;", webhooks).group(1)) <= 30
    assert "return 301 https://$host$request_uri;" in http
    for line in SITE.read_text().splitlines():
        if "example.com" in line and not line.lstrip().startswith("#"):
            assert "PLACEHOLDER" in line, f"unmarked placeholder: {line.strip()}"


# ------------------------------------------------------------------ nginx in front of an upstream that records


class Upstream:
    """Stands in for execution.serve: records each request's headers and body size; /api/events streams
    one event, then a second when `release` is set."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[dict] = []
        self.release = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _record(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(size)
                upstream.seen.append({"path": self.path, "headers": dict(self.headers), "bytes": size})

            def do_GET(self):
                self._record()
                if self.path.startswith("/api/events"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"id: 1\nevent: message\ndata: {}\n\n")
                    self.wfile.flush()
                    upstream.release.wait(20)
                    self.wfile.write(b"id: 2\nevent: message\ndata: {}\n\n")
                    self.close_connection = True
                    return
                self._ok()

            def do_POST(self):
                self._record()
                self._ok()

            def _ok(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxied(tmp_path):
    """nginx with the site on free ports (one process, no root needed), in front of an Upstream."""
    from tests.processes import free_port

    upstream = Upstream()
    http_port, https_port = free_port(), free_port()
    text = (SITE.read_text().replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream.port};")
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace("listen [::]:80;", "")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
            .replace("listen [::]:443 ssl http2;", ""))
    conf = nginx_prefix(tmp_path, text, extra_main="daemon off;\nmaster_process off;")
    binary = tool("nginx", "as root on Debian: apt-get install nginx (./quickstart.sh test does it)")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", f"{tmp_path}/", "-e", str(tmp_path / "logs/error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            assert proc.poll() is None, (tmp_path / "logs/error.log").read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", https_port)) == 0

        wait_for(listening, timeout=20)
        yield {"http": f"http://127.0.0.1:{http_port}", "https": f"https://127.0.0.1:{https_port}",
               "ca": str(tmp_path / "fullchain.pem"), "upstream": upstream}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        upstream.stop()


def test_through_nginx_http_redirects_and_the_app_gets_the_client_and_the_scheme(proxied):
    moved = requests.get(f"{proxied['http']}/inbox?x=1", headers={"Host": "assistant.example.com"},
                         allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"] == "https://assistant.example.com/inbox?x=1"
    r = requests.get(f"{proxied['https']}/health", headers={"Host": "assistant.example.com",
                                                            "X-Forwarded-For": "203.0.113.9"},
                     verify=proxied["ca"], timeout=10)
    assert r.status_code == 200 and "max-age" in r.headers["Strict-Transport-Security"]
    headers = proxied["upstream"].seen[-1]["headers"]
    assert headers["Host"] == "assistant.example.com" and headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-For"] == "127.0.0.1"          # what the client claimed is replaced


def test_through_nginx_bodies_are_capped_where_the_app_caps_them(proxied):
    from execution.lib.providers.base import MAX_BODY_BYTES
    from execution.web.listings import MAX_UPLOAD

    def post(path: str, size: int) -> int:
        return requests.post(f"{proxied['https']}{path}", data=b"x" * size, verify=proxied["ca"], timeout=30,
                             headers={"Content-Type": "application/octet-stream"}).status_code

    assert post("/webhooks/green-api", MAX_BODY_BYTES + 1) == 200      # the app answers with its own reason
    assert proxied["upstream"].seen[-1]["bytes"] == MAX_BODY_BYTES + 1
    assert post("/webhooks/green-api", 2 * MAX_BODY_BYTES) == 413
    assert post("/api/listings/import", MAX_UPLOAD + 64 * 1024) == 200
    assert post("/api/conversations/1/messages", MAX_UPLOAD) == 413


def test_through_nginx_live_updates_arrive_at_once(proxied):
    with requests.get(f"{proxied['https']}/api/events", stream=True, verify=proxied["ca"], timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = r.iter_lines(decode_unicode=True)
        assert next(lines) == "id: 1"           # while the app still holds the stream open: not buffered
        proxied["upstream"].release.set()
        rest = list(lines)
    assert "id: 2" in rest
