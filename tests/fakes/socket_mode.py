"""A local Socket Mode server: what Slack's wss:// endpoint does, on ws://127.0.0.1.

`apps.connections.open` (served by the Slack Web API fake) hands out this server's URL. Each connection
gets `hello`; the test then delivers envelopes as Slack does (`slash_commands`, `events_api`,
`interactive`) and reads the acks the bot sends back, each with the time it arrived.

Slack spreads envelopes over the open connections of an app: `deliver()` deals them round-robin over the
live connections (or to one chosen connection), which is what lets a test show two replicas behaving as one.
`disconnect()` sends Slack's `{"type": "disconnect"}`; `drop()` closes sockets without a word.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.fakes.wait import poll


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    at: float  # time.monotonic()


@dataclass
class Connection:
    number: int
    socket: ServerConnection
    opened_at: float
    closed: bool = False


@dataclass
class Delivery:
    envelope: dict[str, Any]
    connection: int
    at: float
    acks: list[Ack] = field(default_factory=list)


class SocketModeFake:
    name = "socket-mode"

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-mode-fake", daemon=True)
        self._server: Server | None = None
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._next = 0
        self.connections: list[Connection] = []
        self.deliveries: dict[str, Delivery] = {}
        self.acks: list[Ack] = []
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SocketModeFake:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0, ping_interval=None)

    def stop(self) -> None:
        if self._server is not None:
            server = self._server
            self._server = None

            async def _close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()  # its self-pipe sockets too: unclosed, they surface as ResourceWarnings

    def __enter__(self) -> SocketModeFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What apps.connections.open returns (a fresh ticket each time, as Slack's are)."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}&app_id=A0PMBOT"

    # -- the socket side ----------------------------------------------------------------------
    async def _handle(self, socket: ServerConnection) -> None:
        connection = Connection(number=next(self._numbers), socket=socket, opened_at=time.monotonic())
        with self._lock:
            self.connections.append(connection)
        await socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self.live_connections()),
                    "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "A0PMBOT"},
                }
            )
        )
        try:
            async for message in socket:
                data = json.loads(message)
                envelope_id = data.get("envelope_id")
                if not envelope_id:
                    continue
                ack = Ack(envelope_id, data.get("payload"), connection.number, time.monotonic())
                with self._lock:
                    self.acks.append(ack)
                    if envelope_id in self.deliveries:
                        self.deliveries[envelope_id].acks.append(ack)
        except ConnectionClosed:
            pass
        finally:
            connection.closed = True

    def live_connections(self) -> list[Connection]:
        with self._lock:
            return [c for c in self.connections if not c.closed]

    # -- delivering envelopes -----------------------------------------------------------------
    def deliver(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        connection: int | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Send one envelope; round-robin over live connections unless `connection` names one."""
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload}
        if accepts_response_payload is None:
            accepts_response_payload = envelope_type in ("slash_commands", "interactive")
        envelope["accepts_response_payload"] = accepts_response_payload
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        target = self._choose(connection)
        with self._lock:
            delivery = self.deliveries.setdefault(
                envelope_id, Delivery(envelope, target.number, time.monotonic())
            )
            delivery.connection = target.number
        asyncio.run_coroutine_threadsafe(target.socket.send(json.dumps(envelope)), self._loop).result(5)
        return envelope_id

    def _choose(self, number: int | None) -> Connection:
        live = self.live_connections()
        if not live:
            raise AssertionError("socket-mode: no live connection to deliver to")
        if number is not None:
            return next(c for c in live if c.number == number)
        with self._lock:
            chosen = live[self._next % len(live)]
            self._next += 1
        return chosen

    def disconnect(self, *, reason: str = "refresh_requested") -> None:
        """Slack's polite goodbye: the client opens a new connection (apps.connections.open again)."""
        for connection in self.live_connections():
            message = json.dumps(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )
            # Slack delivers nothing more on a connection it said goodbye to.
            connection.closed = True
            asyncio.run_coroutine_threadsafe(connection.socket.send(message), self._loop).result(5)

    def drop(self) -> None:
        """Close every socket without a word, as a network failure would."""
        for connection in self.live_connections():
            asyncio.run_coroutine_threadsafe(connection.socket.close(), self._loop).result(5)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for_connections(self, count: int = 1, timeout: float = 15.0) -> list[Connection]:
        return poll(
            lambda: len(self.live_connections()) >= count and self.live_connections(),
            timeout=timeout,
            what=f"socket-mode: {count} connection(s)",
        )

    def wait_for_ack(self, envelope_id: str, timeout: float = 15.0) -> Ack:
        def acked() -> Ack | None:
            with self._lock:
                delivery = self.deliveries.get(envelope_id)
                return delivery.acks[0] if delivery and delivery.acks else None

        return poll(acked, timeout=timeout, what=f"socket-mode: an ack of {envelope_id}")

    def ack_latency(self, envelope_id: str) -> float:
        with self._lock:
            delivery = self.deliveries[envelope_id]
            return delivery.acks[0].at - delivery.at
