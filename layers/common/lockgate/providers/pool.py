"""HTTP/1.1 keep-alive connections to one upstream: asyncio protocols and httptools' parser
(llhttp, Node.js's), with nothing else between the socket and the provider adapters.

A gateway relays one small JSON body and reads one response per call. A general-purpose client
(aiohttp) spends about 0.2 ms of CPU on that and several extra turns of the event loop (a task
to write the body, a stream reader, a timer per read), which at low concurrency is as much as
the rest of the gateway's work. Here the request goes out in one `write`, and the parser's
callbacks fill the response as its bytes arrive, waking the caller only when it has something
to read.

What the SDKs offered and a gateway needs is kept: TLS with the system's trust store, the
`HTTP(S)_PROXY`/`NO_PROXY` variables (plain-HTTP upstreams asked through the proxy in absolute
form, HTTPS ones through a CONNECT tunnel, TLS end to end), gzip and deflate bodies, and a
bound on how much a slow reader makes it buffer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import httptools

from lockgate.deferred import run_pending

_PAUSE_AT = 1 << 20  # bytes of unread body after which the socket stops being read
_MAX_BODY = 64 << 20  # a buffered response larger than this is refused, decoded or not
_MAX_HEAD = 64 << 10  # bytes of response headers
_IDLE_S = 30.0  # an idle connection older than this is closed rather than reused


class ProtocolError(ConnectionError):
    """The upstream's bytes are not the HTTP/1.1 response they should be."""


@dataclass(frozen=True, slots=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None


def _env_proxy(scheme: str, host: str) -> _Proxy | None:
    """The proxy `HTTP_PROXY`/`HTTPS_PROXY` name for the upstream, unless `NO_PROXY` exempts it;
    read once per pool, as the SDKs read it once per client."""
    url = getproxies().get(scheme)
    if not url or proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// proxies are supported, not {parts.scheme}://")
    authorization = None
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(secret.encode()).decode()
    return _Proxy(parts.hostname, parts.port or 80, authorization)


class _Connection(asyncio.Protocol):
    """One socket and the response arriving on it; httptools calls the `on_*` methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._tunnel: bytearray | None = None  # the proxy's answer to CONNECT, while awaited
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._until_close = False
        self._reusable = False
        self._header_bytes = 0

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel += data
            self._wake()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and self._until_close and exc is None:
            self.complete = True  # a body without a length ends when the connection does
        elif not self.complete:
            self._fail(exc or ConnectionResetError("the upstream closed the connection"))
        self._wake()

    # the parser's side

    def on_message_begin(self) -> None:
        if self.complete:  # a second response to one request: the connection is unsound
            self._fail(ProtocolError("the upstream sent a response nobody asked for"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > _MAX_HEAD:
            self._fail(ProtocolError("the response's headers are too large"))
            self.close()
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self._parser.get_status_code()
        if status < 200:  # an interim response (100 Continue): the real one follows
            self.headers = {}
            return
        self.status = status
        self.headers_done = True
        self._until_close = (
            "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "")
            and status not in (204, 304)
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done and not self.complete:
            self.complete = True
            # Asked now: once `feed_data` returns, the parser has moved on to the next message.
            self._reusable = self._parser.should_keep_alive()
            self._wake()

    # the caller's side

    def send(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)

    def take(self) -> bytes | None:
        """The next piece of body, if one has arrived."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= _PAUSE_AT // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    async def wait(self, until: float | None = None) -> None:
        """Until the parser or the socket has news; raises what failed the connection before
        the response was complete, and `TimeoutError` once `until` (loop time) has passed.
        A timer on the loop, not `asyncio.timeout`: this runs for every piece of every
        response, and the timeout context costs several times as much."""
        if self.error is not None and not self.complete:
            raise self.error
        waiter = self._waiter = self._loop.create_future()
        timer = None if until is None else self._loop.call_at(until, _expire, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
        if self.error is not None and not self.complete:
            raise self.error

    async def open_tunnel(self, request: bytes) -> None:
        """Sends CONNECT and reads the proxy's answer up to its blank line (a 2xx to CONNECT
        has no body, which a response parser cannot know without the request)."""
        self._tunnel = bytearray()
        self.send(request)
        while b"\r\n\r\n" not in self._tunnel:
            if self.closed:
                raise ConnectionResetError("the proxy closed the connection")
            if len(self._tunnel) > 16_384:
                raise ProtocolError("the proxy's answer to CONNECT has no end")
            await self.wait()
        head = bytes(self._tunnel).split(b"\r\n", 1)[0].split()
        self._tunnel = None
        if len(head) < 2 or not head[1].startswith(b"2"):
            status = head[1].decode("latin-1") if len(head) > 1 else "no status"
            raise ConnectionRefusedError(f"the proxy refused the tunnel ({status})")

    def keep(self, now: float) -> bool:
        """Ready for the next request once this one's response was read to its end."""
        if self.closed or not self._reusable or self._chunks or self._until_close or self.error:
            return False
        self._reset()
        self.idle_since = now
        return True

    def reusable(self, now: float) -> bool:
        """Still open, not idle too long, and silent since its last response (a server may
        send a 408 or garbage on an idle connection before it hangs up)."""
        return (
            not self.closed
            and now - self.idle_since < _IDLE_S
            and self.status == 0
            and self.error is None
            and not self._chunks
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Response:
    """A response whose headers have arrived; its body is read with `read` or `chunks`.

    `headers` has lower-case names (repeated ones joined with ", "). The connection goes back
    to the pool when the body was read to its end, and is closed otherwise.
    """

    def __init__(self, pool: Pool, connection: _Connection, read_timeout: float) -> None:
        self._pool = pool
        self._connection = connection
        self._timeout = read_timeout
        self.status = connection.status
        self.headers: Mapping[str, str] = connection.headers
        self._done = False
        encoding = connection.headers.get("content-encoding", "").strip().lower()
        self._inflate = (
            zlib.decompressobj(47) if encoding in ("gzip", "x-gzip", "deflate") else None
        )

    async def read(self) -> bytes:
        """The whole body, decoded; raises `ProtocolError` past 64 MiB, however well it
        compresses. Taken as it arrives, so reading never pauses for it."""
        connection = self._connection
        parts: list[bytes] = []
        size = 0
        until: float | None = None  # the whole body within the read timeout
        try:
            while True:
                chunk = connection.take()
                if chunk is None:
                    if connection.complete:
                        break
                    if until is None:
                        until = asyncio.get_running_loop().time() + self._timeout
                    await connection.wait(until)
                    continue
                if self._inflate is not None:
                    chunk = self._inflate.decompress(chunk, _MAX_BODY - size + 1)
                size += len(chunk)
                if size > _MAX_BODY:
                    raise ProtocolError("the response body is too large")
                parts.append(chunk)
            if self._inflate is not None:
                parts.append(self._inflate.flush())
        except BaseException:
            self.close()
            raise
        self.release()
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, each wait for bytes bounded by the read timeout."""
        connection = self._connection
        while True:
            chunk = connection.take()
            if chunk is not None:
                if self._inflate is not None:
                    chunk = self._inflate.decompress(chunk)
                if chunk:
                    yield chunk
            elif connection.complete:
                self.release()
                return
            else:
                await connection.wait(asyncio.get_running_loop().time() + self._timeout)

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._pool.put_back(self._connection)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._pool.drop(self._connection)


class Pool:
    """Keep-alive connections to one `scheme://host:port`, the most recently used first.

    Unbounded, like the client it replaces: the executor's deadlines and the gateway's own
    limits bound how many calls are in flight.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 in brackets
        default_port = self._port == (443 if self._tls else 80)
        authority = host if default_port else f"{host}:{self._port}"
        self._proxy = _env_proxy(parts.scheme, self._host)
        # Through a plain-HTTP proxy the request names the whole URL; otherwise only the path.
        self._prefix = (
            f"{parts.scheme}://{authority}{parts.path}"
            if self._proxy and not self._tls
            else parts.path
        ).rstrip("/")
        fixed = {"host": authority, **headers}
        if self._proxy and not self._tls and self._proxy.authorization:
            fixed["proxy-authorization"] = self._proxy.authorization
        self._head = _header_lines(fixed)
        self._authority = authority
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        # Built here, not at the first call: loading the trust store reads files (~25 ms),
        # which would stall the serving loop.
        self._ssl = _tls_context() if self._tls else None
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None) -> Response:
        """Sends the request and returns once the response's headers have arrived."""
        extra = _header_lines(headers) if headers else ""
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\n{self._head}{extra}"
            f"content-length: {len(body)}\r\n\r\n"
        )
        connection = await self._checkout()
        try:
            connection.send(head.encode() + body)
            run_pending()  # the upstream's round trip is spare time: finish what was put off
            until = asyncio.get_running_loop().time() + self._read_timeout
            while not connection.headers_done:
                await connection.wait(until)
        except BaseException:
            self.drop(connection)
            raise
        return Response(self, connection, self._read_timeout)

    def put_back(self, connection: _Connection) -> None:
        if connection.keep(asyncio.get_running_loop().time()):
            self._idle.append(connection)
        else:
            self.drop(connection)

    def drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def _checkout(self) -> _Connection:
        now = asyncio.get_running_loop().time()
        idle = self._idle
        while idle and not idle[0].reusable(now):  # the oldest first, so none lingers
            self.drop(idle.popleft())
        while idle:
            connection = idle.pop()
            if connection.reusable(now):
                return connection
            self.drop(connection)
        async with asyncio.timeout(self._connect_timeout):
            connection = await self._connect()
        self._open.add(connection)
        return connection

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._proxy is None:
            _, connection = await loop.create_connection(
                lambda: _Connection(loop),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._tls else None,
            )
            return connection
        _, connection = await loop.create_connection(
            lambda: _Connection(loop), self._proxy.host, self._proxy.port
        )
        if not self._tls:
            return connection
        try:
            connect = {"host": self._authority}
            if self._proxy.authorization:
                connect["proxy-authorization"] = self._proxy.authorization
            tunnel = f"CONNECT {self._host}:{self._port} HTTP/1.1\r\n{_header_lines(connect)}\r\n"
            await connection.open_tunnel(tunnel.encode())
            assert connection.transport is not None
            connection.transport = await loop.start_tls(  # type: ignore[assignment]
                connection.transport, connection, _tls_context(), server_hostname=self._host
            )
        except BaseException:
            connection.close()
            raise
        return connection


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One per process: every HTTPS upstream trusts the same store."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _header_lines(headers: Mapping[str, str]) -> str:
    """`name: value\\r\\n` lines; a name or value that could end the header early is refused."""
    lines = []
    for name, value in headers.items():
        text = str(value)
        if not name or any(c in name for c in "\r\n: \t") or "\r" in text or "\n" in text:
            raise ValueError(f"header {name!r} cannot be sent as it is")
        lines.append(f"{name}: {text}\r\n")
    return "".join(lines)
