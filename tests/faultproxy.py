"""A small threaded TCP proxy for outage tests: the app talks to a server through it, the test cuts it.

    proxy = FaultProxy(("127.0.0.1", 5432)).start()     # or FaultProxy("/tmp/x/redis.sock")
    ... point the app at 127.0.0.1:proxy.port ...
    proxy.cut()        # every open connection closed at once; new ones accepted and closed at once
    proxy.restore()    # new connections are forwarded again (the cut ones stay dead: clients reconnect)
    proxy.stop()       # listener, connections and threads gone (also on `with FaultProxy(...) as p:`)

The server behind it is never touched: an outage is simulated for the clients of this proxy only, so a
shared PostgreSQL or Redis keeps serving everyone else. During a cut a connection attempt succeeds at
TCP level and is closed before a byte is read, so a client fails at once (no connect timeout to wait
for), as it does when a server is restarting or a load balancer has no backend.
"""

from __future__ import annotations

import socket
import threading
from typing import Union

Target = Union[tuple[str, int], str]   # (host, port), or the path of a unix socket


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """Forward 127.0.0.1:<random port> to `target`; `cut()` / `restore()` simulate the server going away."""

    def __init__(self, target: Target, *, host: str = "127.0.0.1", connect_timeout_s: float = 5.0) -> None:
        self.target = target
        self.connect_timeout_s = connect_timeout_s
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)      # the accept loop notices stop() within 0.1 s
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: dict[int, tuple[socket.socket, socket.socket]] = {}
        self._threads: set[threading.Thread] = set()
        self._next_id = 0
        self._is_cut = False
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)
        # What happened, for the test to report.
        self.forwarded = 0        # connections forwarded to the target
        self.refused = 0          # connections accepted and closed during a cut
        self.severed = 0          # open connections closed by cut() / stop()

    # ------------------------------------------------------------------ control

    @property
    def is_cut(self) -> bool:
        return self._is_cut

    def start(self) -> "FaultProxy":
        self._acceptor.start()
        return self

    def cut(self) -> int:
        """Close every open connection and refuse new ones until restore(); returns how many were closed."""
        with self._lock:
            self._is_cut = True
            victims = list(self._open.values())
            self._open.clear()
            self.severed += len(victims)
        for client, upstream in victims:
            _close(client)
            _close(upstream)
        return len(victims)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._is_cut = False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection and wait for the proxy's threads to end."""
        self._stopping.set()
        self.cut()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout)
        _close(self._listener)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def threads_alive(self) -> int:
        """Proxy threads still running (the acceptor and the pumps): 0 after stop()."""
        with self._lock:
            pumps = sum(1 for t in self._threads if t.is_alive())
        return pumps + (1 if self._acceptor.is_alive() else 0)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the work

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address = self.target
        else:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            address = self.target
        upstream.settimeout(self.connect_timeout_s)
        try:
            upstream.connect(address)
        except OSError:
            _close(upstream)
            raise
        upstream.settimeout(None)
        return upstream

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._is_cut or self._stopping.is_set():
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = self._connect_upstream()
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._is_cut or self._stopping.is_set():   # cut() ran while we connected
                    self.refused += 1
                    _close(client)
                    _close(upstream)
                    continue
                conn_id = self._next_id
                self._next_id += 1
                self._open[conn_id] = (client, upstream)
                self.forwarded += 1
                pumps = [threading.Thread(target=self._pump, args=(conn_id, a, b), daemon=True,
                                          name=f"faultproxy-{self.port}-{conn_id}")
                         for a, b in ((client, upstream), (upstream, client))]
                self._threads.update(pumps)
                # Forget finished pumps so a long run does not keep every thread object.
                self._threads = {t for t in self._threads if t.is_alive() or t in pumps}
            for pump in pumps:
                pump.start()

    def _pump(self, conn_id: int, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        # One side ended (or was cut): end the whole connection, as a dead server would.
        with self._lock:
            pair = self._open.pop(conn_id, None)
        if pair is not None:
            _close(pair[0])
            _close(pair[1])
