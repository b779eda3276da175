"""One pooled HTTP client for the providers that speak JSON over HTTP (OpenAI and Anthropic wire).

A gateway forwards bytes: the official SDKs' typed request building and their transports cost
more CPU per request than the rest of the gateway together, so the hot path posts JSON encoded
once with orjson on a pool of keep-alive connections and reads server-sent events straight off
the socket. Each adapter keeps its own pool (one per upstream); connections open lazily inside
the serving loop.

Failures before a response arrives are classified here, once for every wire: a timeout of the
connection or of a read is `timeout_read`, anything else on the socket is a connection error.
What a status or an in-stream error means is the wire's business (its adapter).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from lockgate.policy import Timeouts
from lockgate.providers import errors, pool

USER_AGENT = "lockgate"


@dataclass(frozen=True, slots=True)
class Reply:
    """A buffered response: the status, its headers (case-insensitive) and the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: its `event:` name (None when absent) and its joined data."""

    name: str | None
    data: bytes


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` (finer, where the upstream sends it) or `retry-after`."""
    milliseconds = errors.parse_retry_after(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return errors.parse_retry_after(headers.get("retry-after"))


def transport_error(exc: BaseException) -> errors.ProviderError:
    """A failure before the upstream answered: every one is worth a retry."""
    if isinstance(exc, TimeoutError):
        return errors.timed_out("read")
    return errors.connection_failed(type(exc).__name__)


class SSEDecoder:
    """Server-sent events from a byte stream, parsed incrementally as chunks arrive.

    Chunk boundaries fall anywhere (inside a line, between `\\r` and `\\n`); only complete
    events come out. Comments and fields other than `event` and `data` are skipped.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """The events `chunk` completes, each parsed as it is taken: an upstream's whole answer
        often arrives in one piece, and its first event goes on without waiting for the rest
        to be parsed."""
        buffer = self._pending + chunk if self._pending else chunk
        if b"\r" in buffer:
            held = buffer.endswith(b"\r")  # its `\n` may come with the next chunk
            body = buffer[:-1] if held else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        *blocks, self._pending = buffer.split(b"\n\n")
        return filter(None, map(_event, blocks))


def _event(block: bytes) -> Event | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # b":" starts a comment
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if name is None and not data:
        return None
    return Event(name, b"\n".join(data))


class HttpUpstream:
    """POSTs JSON to one upstream over pooled keep-alive connections (`pool`).

    The connect timeout bounds opening a connection; the read timeout (the policy's total, as
    the SDKs had it) bounds each wait for bytes. The executor's own deadlines (response, first
    chunk, between chunks) sit above these and cancel the call when they fire.
    """

    def __init__(self, base_url: str, headers: Mapping[str, str], timeouts: Timeouts) -> None:
        self._pool = pool.Pool(
            base_url,
            {
                "content-type": "application/json",
                "accept": "application/json",
                "user-agent": USER_AGENT,
                **headers,
            },
            connect_timeout=timeouts.connect_s,
            read_timeout=timeouts.total_s,
        )

    async def post(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """The whole response; raises `ProviderError` only for transport failures. `headers`
        are this call's own, on top of the client's."""
        try:
            response = await self._pool.post(path, orjson.dumps(body), headers)
            return Reply(response.status, response.headers, await response.read())
        except (OSError, TimeoutError) as exc:
            raise transport_error(exc) from None

    async def open_stream(
        self, path: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> pool.Response:
        """A response whose body is still on the wire; the caller releases it (`events`)."""
        try:
            return await self._pool.post(
                path, orjson.dumps(body), {**(headers or {}), "accept": "text/event-stream"}
            )
        except (OSError, TimeoutError) as exc:
            raise transport_error(exc) from None

    async def aclose(self) -> None:
        await self._pool.aclose()


async def read_error(response: pool.Response) -> Reply:
    """An error response read whole and released; raises `ProviderError` if the read fails."""
    try:
        body = await response.read()
    except (OSError, TimeoutError) as exc:
        raise transport_error(exc) from None
    return Reply(response.status, response.headers, body)


async def events(response: pool.Response) -> AsyncGenerator[Event, None]:
    """The response's events as they arrive; transport errors propagate as raised (each wire
    classifies a failure mid-stream its own way). Closing the iterator early closes the
    connection, so the upstream stops generating."""
    decoder = SSEDecoder()
    try:
        async for chunk in response.chunks():
            for event in decoder.feed(chunk):
                yield event
    finally:
        response.close()  # a no-op once the body was read to its end and released


def decode(data: bytes | str) -> Any:
    """JSON from bytes; raises ValueError (orjson.JSONDecodeError) on anything else."""
    return orjson.loads(data)
