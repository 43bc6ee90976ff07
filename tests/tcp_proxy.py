"""A TCP proxy on 127.0.0.1 that a test can cut: the database's network, simulated.

`blackhole()` stops forwarding in both directions while keeping every connection open (and
accepting new ones that go nowhere): to a client it looks like a stalled network, the hard
case, where nothing fails until a timeout. `restore()` forwards again. Only connections this
proxy made are touched; the database server itself is never stopped.
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType

BUFFER = 65536


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._pump, daemon=True)]

    def __enter__(self) -> TcpProxy:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            for sock in self._pairs:
                sock.close()
            self._pairs.clear()

    def blackhole(self) -> None:
        self._forwarding.clear()

    def restore(self) -> None:
        self._forwarding.set()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs[client] = upstream
                self._pairs[upstream] = client

    def _pump(self) -> None:
        selector = selectors.DefaultSelector()
        registered: set[socket.socket] = set()
        while not self._stop.is_set():
            if not self._forwarding.wait(0.05):
                continue
            with self._lock:
                current = set(self._pairs)
            for sock in current - registered:
                selector.register(sock, selectors.EVENT_READ)
            for sock in registered - current:
                selector.unregister(sock)
            registered = current
            if not registered:
                self._stop.wait(0.02)
                continue
            for key, _ in selector.select(timeout=0.05):
                if not self._forwarding.is_set():
                    break  # hold the data: the network went quiet
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                self._forward(sock)
        selector.close()

    def _forward(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._pairs.get(sock)
        try:
            data = sock.recv(BUFFER) if peer is not None else b""
            if data and peer is not None:
                peer.sendall(data)
                return
        except OSError:
            pass
        with self._lock:  # one side closed: close both
            for s in (sock, peer):
                if s is not None:
                    self._pairs.pop(s, None)
                    s.close()
