"""A TCP proxy on 127.0.0.1 port 0 in front of a real server (the local PostgreSQL), for outage tests.

Point the bot's DATABASE_URL at `proxy.url_for(url)` and every byte goes through here. The test then plays
the outage:

* `cut()` closes every open link at once and keeps accepting: PostgreSQL restarted, pooled connections
  are dead, new ones work;
* `refuse()` cuts too and stops listening, so a connect is refused (ECONNREFUSED), as while the server
  is down;
* `restore()` listens again on the same port: the database is back.

`accepted` counts the links opened, `refused` tells whether it is down now.

    with TcpProxy(upstream=("127.0.0.1", 5432)) as proxy:
        env["DATABASE_URL"] = proxy.url_for("postgresql://postgres@127.0.0.1:5432/test")
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

_POLL = 0.05  # seconds an accept waits before it looks at the stop flag again
_CHUNK = 65536


class _Link:
    """One client connection and its own connection to the upstream server, pumped both ways."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._closed = threading.Event()

    def pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = source.recv(_CHUNK)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass  # the other side closed, or `close()` did: the link is over either way
        finally:
            self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):  # not connected any more
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv() on this socket
            sock.close()


class TcpProxy:
    def __init__(self, *, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.port = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._listen()
        return self

    def stop(self) -> None:
        self._close_listener()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url_for(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # -- the outage ---------------------------------------------------------------------------
    def cut(self) -> int:
        """Close every open link, as a server restart does; returns how many there were."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        return len(links)

    def refuse(self) -> None:
        """Down: open links are cut and new connections refused until `restore()`."""
        self._close_listener()
        self.cut()

    def restore(self) -> None:
        """Back: listening again on the same port."""
        if self._listener is None:
            self._listen()

    @property
    def refused(self) -> bool:
        return self._listener is None

    @property
    def open_links(self) -> int:
        with self._lock:
            return len(self._links)

    # -- internals ----------------------------------------------------------------------------
    def _listen(self) -> None:
        # create_server sets SO_REUSEADDR, so `restore()` can bind the same port again at once.
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(_POLL)
        self.port = listener.getsockname()[1]
        self._stop = threading.Event()
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._stop), name="tcp-proxy-accept", daemon=True
        )
        self._acceptor.start()

    def _close_listener(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener, self._acceptor = None, None
        if listener is None:
            return
        self._stop.set()
        if acceptor is not None:
            acceptor.join(5)
        listener.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()  # the server itself is down: the client sees its connection end
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
                self.accepted += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(link, source, target), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        link.pump(source, target)
        with self._lock:
            if link in self._links:
                self._links.remove(link)
