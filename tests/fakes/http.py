"""A small real HTTP server for the vendor fakes: routes, recorded requests and injectable faults.

Each fake (PagerDuty, GitHub, Slack, Confluence) subclasses `FakeServer`, registers routes with
`self.route(method, pattern, handler)` and answers with `Response`. Tests then:

* read `server.requests` (method, path, query, headers, body, the monotonic time it arrived and when the
  answer left) to assert what the bot asked;
* inject faults with `server.faults.add(Fault(...))`: latency, N answers of 429 + Retry-After, N 5xx, or
  a hang longer than the client's timeout, optionally only for paths matching a pattern.

It binds 127.0.0.1 port 0 and serves on a daemon thread; `with FakeSubclass() as server:` starts and stops it.
`tls=` takes an `ssl.SSLContext` (see `tls.py`) for clients that insist on https.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.wait import poll


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    received_at: float  # time.monotonic()
    answered_at: float = 0.0
    status: int = 0

    def arg(self, name: str, default: str | None = None) -> str | None:
        """One query-string or form value (Slack posts form-encoded bodies)."""
        if name in self.query:
            return self.query[name][0]
        return self.form().get(name, default)

    def form(self) -> Mapping[str, str]:
        """The body's fields, parsed once (handlers ask for them per message on big pages)."""
        return _parsed_form(self.body, self.headers.get("content-type", ""))

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@lru_cache(maxsize=64)
def _parsed_form(body: bytes, ctype: str) -> MappingProxyType[str, str]:
    if "application/x-www-form-urlencoded" in ctype:
        fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    elif "application/json" in ctype and body:
        data = json.loads(body)
        fields = (
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
            if isinstance(data, dict)
            else {}
        )
    else:
        fields = {}
    return MappingProxyType(fields)  # shared between calls: read-only


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif self.body is None:
            data = b""
        else:
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        headers["Content-Length"] = str(len(data))
        return data, headers


@dataclass
class Fault:
    """One injected misbehaviour. `times` answers are affected (None: until removed)."""

    kind: str  # "latency" | "429" | "5xx" | "hang"
    times: int | None = 1
    path: str = ".*"  # regex matched against the request path
    retry_after: int = 1  # for 429
    status: int = 503  # for 5xx
    seconds: float = 0.0  # for latency and hang

    def matches(self, path: str) -> bool:
        return re.search(self.path, path) is not None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> list[Fault]:
        """The faults that apply to this request, counting one use of each."""
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(path):
                    continue
                taken.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken


Handler = Callable[[Request, re.Match[str]], Response]


class FakeServer:
    """Base of the local vendor fakes. Subclasses register routes in `__init__`."""

    name = "fake"

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.faults = Faults()
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._hang_release = threading.Event()

    # -- routes and answers -------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def unauthorized(self, request: Request) -> Response | None:
        """Subclasses check credentials here; a Response refuses the request."""
        return None

    def rate_limited(self, fault: Fault) -> Response:
        return Response(429, {"error": "rate limited"}, {"Retry-After": str(fault.retry_after)})

    def server_error(self, fault: Fault) -> Response:
        return Response(fault.status, {"error": HTTPStatus(fault.status).phrase})

    def not_found(self, request: Request) -> Response:
        return Response(404, {"error": "not found"})

    def dispatch(self, request: Request) -> Response:
        for fault in self.faults.take(request.path):
            if fault.kind == "latency":
                time.sleep(fault.seconds)
            elif fault.kind == "hang":
                # Hold the answer past the client's timeout; released early when the server stops.
                self._hang_release.wait(fault.seconds)
                return Response(504, {"error": "hung"})
            elif fault.kind == "429":
                return self.rate_limited(fault)
            elif fault.kind == "5xx":
                return self.server_error(fault)
        refusal = self.unauthorized(request)
        if refusal is not None:
            return refusal
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                return handler(request, match)
        return self.not_found(request)

    # -- recorded requests --------------------------------------------------------------------
    def requests_to(self, pattern: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.requests
                if re.search(pattern, r.path) and (method is None or r.method == method.upper())
            ]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        return poll(predicate, timeout=timeout, what=f"{self.name}: condition")

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = (
                True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
            )

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    received_at=time.monotonic(),
                )
                try:
                    response = fake.dispatch(request)
                except Exception as exc:  # a bug in a fake must show as a 500 the test can see, not a hang
                    response = Response(500, {"error": f"fake crashed: {exc!r}"})
                data, headers = response.encode()
                with fake._lock:
                    fake.requests.append(
                        Request(
                            **{**request.__dict__, "answered_at": time.monotonic(), "status": response.status}
                        )
                    )
                try:
                    self.send_response(response.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._hang_release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
