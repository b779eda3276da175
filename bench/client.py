"""A blocking keep-alive HTTP/1.1 client on a raw socket, for the concurrency-1 measurements.

At concurrency 1 the client's own cost sits inside every measured latency, and on two cores it
also competes with the servers for CPU. A raw socket with a minimal parser costs microseconds per
request, and the same microseconds for every system, so it cancels out when the direct-to-mock
figure is subtracted. Every request carries a unique prompt so that no system can answer it
from a cache: the bench measures the proxying path, not a cache hit.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CACHE_HEADER = "x-lockgate-cache"

PROMPTS = (
    "What is the capital of France?",
    "Summarize the plot of Hamlet in one sentence.",
    "Which planet is the largest in the solar system?",
    "Translate 'good morning' into Spanish.",
    "What is 17 plus 25?",
    "Write a haiku about autumn leaves.",
    "Explain what a hash map is in two sentences.",
    "Suggest a name for a grey cat.",
)
"""Everyday small prompts, rotated per request in the same order for every system. A gateway's
work can depend on the text (a safety check may take a slower path for some prompts), so one
fixed prompt could land on either side of such a split by luck; a mix is what traffic is."""


@dataclass(frozen=True)
class Target:
    """One system under test as the client sees it: where it listens and what it expects."""

    name: str
    port: int
    model: str
    api_key: str
    path: str = "/v1/chat/completions"
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def body(self, n: int, *, stream: bool) -> bytes:
        """Request `n`: the prompt `n % len(PROMPTS)`, made unique by the run tag and `n`."""
        return self.body_template(n % len(PROMPTS), stream=stream).replace(b"%d", str(n).encode())

    def body_template(self, prompt: int, *, stream: bool = False) -> bytes:
        """The JSON body for one prompt of the mix, with `%d` where the request number goes
        (wrk's script fills it in per request with `string.format`)."""
        content = f"{PROMPTS[prompt]} (request {self.run_tag} %d)"
        payload: dict[str, object] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 16,
        }
        if stream:
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":")).encode()

    def request(self, n: int, *, stream: bool = False) -> bytes:
        body = self.body(n, stream=stream)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {self.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    first_content_at: float | None = None


class Connection:
    """One persistent connection; reconnects when the server asks to close."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._buf = bytearray()
        self._sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self._port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf.clear()
        return sock

    def close(self) -> None:
        self._sock.close()

    def _recv(self) -> bool:
        chunk = self._sock.recv(262144)
        self._buf += chunk
        return bool(chunk)

    def _read_until(self, sep: bytes) -> bytes:
        while (idx := self._buf.find(sep)) < 0:
            if not self._recv():
                raise ConnectionError("connection closed mid-response")
        out = bytes(self._buf[:idx])
        del self._buf[: idx + len(sep)]
        return out

    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._recv():
                raise ConnectionError("connection closed mid-response")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _read_to_close(self) -> bytes:
        while self._recv():
            pass
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def _read_chunked(self, watch: bool) -> tuple[bytes, float | None]:
        """Decode a chunked body, noting when the first SSE event with content arrived."""
        parts: list[bytes] = []
        scanner = _SseScanner() if watch else None
        first: float | None = None
        while True:
            size = int(self._read_until(b"\r\n").split(b";", 1)[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return b"".join(parts), first
            data = self._read_exact(size + 2)[:-2]
            parts.append(data)
            if scanner is not None and first is None and scanner.feed(data):
                first = time.perf_counter()

    def exchange(self, request: bytes, *, stream: bool = False) -> Reply:
        self._sock.sendall(request)
        status_line, *lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        first: float | None = None
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, first = self._read_chunked(stream)
        else:
            body = self._read_to_close()
            headers["connection"] = "close"
        if stream and first is None and _SseScanner().feed(body):
            first = time.perf_counter()
        if headers.get("connection", "").lower() == "close":
            self._sock.close()
            self._sock = self._connect()
        return Reply(int(status_line.split(" ", 2)[1]), headers, body, first)


class _SseScanner:
    """Finds the first `data:` event whose delta carries text; role-only chunks do not count,
    so a gateway cannot look fast by answering with an empty chunk before the upstream does."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bool:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        return any(_has_content(line) for line in lines)


def _has_content(line: bytes) -> bool:
    if not line.startswith(b"data:"):
        return False
    payload = line[5:].strip()
    if not payload or payload == b"[DONE]":
        return False
    try:
        choices = json.loads(payload).get("choices") or []
    except (ValueError, AttributeError):
        return False
    return any((c.get("delta") or {}).get("content") for c in choices if isinstance(c, dict))


class RequestError(RuntimeError):
    """A system answered with an error; its figures would be meaningless."""


def probe(target: Target, *, stream: bool) -> Reply:
    """One request, checked: the bench refuses to time a system that does not answer properly."""
    conn = Connection(target.port)
    try:
        reply = conn.exchange(target.request(0, stream=stream), stream=stream)
    finally:
        conn.close()
    if reply.status != 200:
        raise RequestError(f"{target.name}: HTTP {reply.status}: {reply.body[:300]!r}")
    if stream and reply.first_content_at is None:
        raise RequestError(f"{target.name}: stream carried no content: {reply.body[:300]!r}")
    if not stream and b'"choices"' not in reply.body:
        raise RequestError(f"{target.name}: no choices in reply: {reply.body[:300]!r}")
    return reply


def sample_latency(
    target: Target,
    seconds: float,
    *,
    stream: bool = False,
    tally: Counter[str] | None = None,
) -> list[float]:
    """Sequential requests for `seconds`; returns per-request milliseconds.

    Non-streaming: send to last byte of the body. Streaming: send to the first content chunk
    (the rest of the stream is still read, so the next request starts on a clean connection).
    `tally` counts the gateway's cache verdicts: the figures are only the proxying path's if
    every answer was a miss.
    """
    conn = Connection(target.port)
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    try:
        while True:
            n += 1
            request = target.request(n, stream=stream)
            start = time.perf_counter()
            reply = conn.exchange(request, stream=stream)
            end = reply.first_content_at if stream else time.perf_counter()
            if reply.status != 200 or end is None:
                raise RequestError(f"{target.name}: HTTP {reply.status}: {reply.body[:300]!r}")
            samples.append((end - start) * 1000.0)
            if tally is not None:
                tally[reply.headers.get(CACHE_HEADER, "absent")] += 1
            if end >= deadline:
                return samples
    finally:
        conn.close()
