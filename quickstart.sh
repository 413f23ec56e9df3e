#!/usr/bin/env bash
# ./quickstart.sh        set up and serve the demo on http://127.0.0.1:8000
# ./quickstart.sh test   set up and run the whole test suite (extra args go to pytest)
# Needs only Python 3. Safe to re-run: it installs only what changed and keeps your data.
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-serve}"
case "$mode" in
  serve) ;;
  test) shift ;;
  -h|--help) sed -n '2,4p' "$0" | sed 's/^# //'; exit 0 ;;
  *) echo "usage: ./quickstart.sh [test [pytest args...]]" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "quickstart: $PYTHON not found; install Python 3.10 or newer" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "quickstart: creating .venv"
  "$PYTHON" -m venv .venv
fi
VPY=.venv/bin/python

install() {  # install a requirements file unless it is unchanged since the last install
  local req="$1" stamp=".venv/.install-stamp-$(basename "$1" .txt)"
  local sum
  sum=$(cat "$req" requirements.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    echo "quickstart: installing $req"
    "$VPY" -m pip install --disable-pip-version-check -q -r "$req"
    echo "$sum" > "$stamp"
  fi
}

browser() {  # the inbox's browser tests drive Debian's chromium; install it when we can
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: installing chromium and fonts for the browser tests (apt-get)"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-core fonts-noto-color-emoji \
        >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium fonts-noto-core fonts-noto-color-emoji >/dev/null 2>&1; }; then
      return 0
    fi
  fi
  echo "quickstart: chromium is not installed and cannot be installed here: the browser tests will be SKIPPED" >&2
  echo "quickstart: (as root on Debian: apt-get install chromium fonts-noto-core)" >&2
}

nginx_tool() {  # tests/test_deploy_files.py checks deploy/nginx/ with nginx itself; install it when we can
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: installing nginx for the deploy-file tests (apt-get)"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null 2>&1 || { apt-get update -qq \
        >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null 2>&1; }; then
      # The tests start their own nginx on free ports; Debian's service would serve its default site on
      # port 80, which nobody asked for.
      if [ -d /run/systemd/system ]; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
      return 0
    fi
  fi
  echo "quickstart: nginx is not installed and cannot be installed here: tests/test_deploy_files.py will FAIL" >&2
  echo "quickstart: (as root on Debian: apt-get install nginx)" >&2
}

if [ "$mode" = "test" ]; then
  install requirements-dev.txt
  browser
  nginx_tool
  set +e
  # Four workers: the suite mostly waits on PostgreSQL, Redis and its fake servers, so on two cores
  # it still runs in about half the time. Each worker has its own database and Redis index.
  "$VPY" -m pytest -n "${TEST_WORKERS:-4}" "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    echo "quickstart: pytest collected no tests; that is a failure" >&2
    exit 1
  fi
  exit "$rc"
fi

install requirements.txt
# Without DATABASE_URL / REDIS_URL each step below starts the embedded servers it needs and stops
# them as it exits (or joins the ones already running, which it leaves alone); a server left over
# by a killed run is taken over and stopped. The app, exec'd last, owns the servers it starts, so
# Ctrl-C stops them with it. See execution/lib/resources.py.
"$VPY" -m execution.init_env >/dev/null
"$VPY" -m execution.migrate
"$VPY" -m execution.seed_demo
HOST_ADDR=$("$VPY" -c 'from execution.lib.config import load_settings as l; s=l(); print(f"{s.host} {s.port}")')
read -r host port <<<"$HOST_ADDR"
if ! "$VPY" -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)' "$host" "$port"; then
  echo "quickstart: $host:$port is already in use (another quickstart still running?): stop it, or choose another port: PORT=$((port + 1)) ./quickstart.sh" >&2
  exit 1
fi
echo "quickstart: serving on http://$host:$port  (inbox: /, log in with the demo login above; customer simulator: /simulator; health: /health; stop with Ctrl-C)"
# exec: uvicorn gets Ctrl-C and SIGTERM itself and shuts down cleanly, embedded servers included.
exec "$VPY" -m uvicorn main:app --host "$host" --port "$port" --no-access-log
