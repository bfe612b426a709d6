"""HTTP/1.1 for bench/cluster.py at a fraction of aiohttp's CPU: the bench runs on the same two cores as the
workers it measures, so every millisecond it spends per update is one the cluster cannot have.

`serve` answers requests on keep-alive connections with a handler `(method, path, headers, body) → (status,
body)`; `Balancer` posts to a set of upstreams round robin over a pool of keep-alive connections, skipping an
upstream that refuses (as nginx's `proxy_next_upstream` does) — the load balancer in front of the workers,
in the poster instead of a proxy hop of its own. Bodies travel with Content-Length only (what aiohttp's
client and server send for the requests and answers here); anything else is refused loudly rather than
misread. No pipelining: one request at a time per connection, as aiohttp's client sends them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _take(buffer: bytearray) -> tuple[str, dict[str, str], bytes] | None:
    """The first whole message in `buffer`, removed from it: its start line, headers (names lower-cased) and
    body; None until all of it arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    start, *lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ValueError("chunked bodies are not supported here")
    body_at = end + 4
    length = int(headers.get("content-length") or 0)
    if len(buffer) < body_at + length:
        return None
    body = bytes(buffer[body_at : body_at + length])
    del buffer[: body_at + length]
    return start, headers, body


class _ServerConnection(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        message = _take(self.buffer)
        if message is None:
            return
        start, headers, body = message
        method, target, _version = start.split(" ", 2)
        self.busy = True
        task = asyncio.ensure_future(self.handler(method, target, headers, body))
        task.add_done_callback(self._answer)

    def _answer(self, task: asyncio.Future[tuple[int, bytes]]) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        status, body = task.result()
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    """Listen on a free port of 127.0.0.1: the server (to close) and its base URL."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _ServerConnection(handler), "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, f"http://{host}:{port}"


class _ClientConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or (message := _take(self.buffer)) is None:
            return
        start, headers, body = message
        keep = headers.get("connection", "").lower() != "close"
        if not self.answer.done():
            self.answer.set_result((int(start.split(" ", 2)[1]), body, keep))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("the upstream closed the connection"))


class Balancer:
    """Round robin over `targets` (base URLs), each request on an idle keep-alive connection or a new one."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._turn = itertools.count()
        self._idle: dict[str, list[_ClientConnection]] = {}

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST to the next upstream; one that fails (refused, closed mid-answer) is skipped for the next.
        The status and body of the answer, or 502 when none answered."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        for _ in range(max(1, len(self.targets))):
            target = self.targets[next(self._turn) % len(self.targets)]
            host = target.removeprefix("http://")
            request = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body
            try:
                return await self._exchange(target, host, request)
            except (OSError, ValueError):  # ConnectionError is an OSError
                continue
        return 502, b""

    async def _exchange(self, target: str, host: str, request: bytes) -> tuple[int, bytes]:
        idle = self._idle.setdefault(target, [])
        connection = None
        while idle and connection is None:
            candidate = idle.pop()
            if candidate.transport is not None and not candidate.transport.is_closing():
                connection = candidate
        if connection is None:
            name, port = host.rsplit(":", 1)
            _transport, connection = await asyncio.get_running_loop().create_connection(
                _ClientConnection, name, int(port)
            )
        status, body, keep = await connection.request(request)
        if keep and target in self.targets:
            idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()
        return status, body

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                if connection.transport is not None:
                    connection.transport.close()
        self._idle.clear()
