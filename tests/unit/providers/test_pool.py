"""The providers' keep-alive connection pool against real sockets on 127.0.0.1: raw servers
that answer byte for byte what each case needs (chunked, gzip, a body ended by closing,
garbage), a TLS upstream with a certificate made for the test, and a CONNECT proxy."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lockgate.deferred import defer
from lockgate.policy import Timeouts
from lockgate.providers import pool
from lockgate.providers.errors import ProviderError
from lockgate.providers.http import HttpUpstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def raw_server(
    handler: Handler, context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[int]]]:
    """Serves `handler` on a free port; yields the port and the list of connections made."""
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername")[1])
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answering(*responses: bytes) -> Handler:
    """Answers each request on a connection with the next response, then closes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_request(reader)
            writer.write(response)
            await writer.drain()

    return handler


def ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def upstream(port: int, scheme: str = "http") -> pool.Pool:
    return pool.Pool(
        f"{scheme}://127.0.0.1:{port}/v1",
        {"authorization": "Bearer k"},
        connect_timeout=5,
        read_timeout=5,
    )


async def test_connections_are_kept_alive_and_reused() -> None:
    async with raw_server(answering(ok(b"one"), ok(b"two"))) as (port, connections):
        client = upstream(port)
        first = await (await client.post("/chat", b"{}", None)).read()
        second = await (await client.post("/chat", b"{}", None)).read()
        await client.aclose()
    assert (first, second) == (b"one", b"two")
    assert len(connections) == 1


async def test_the_request_goes_out_as_http_1_1_with_its_headers() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(ok(b"{}"))
        await writer.drain()

    async with raw_server(handler) as (port, _):
        client = upstream(port)
        await (await client.post("/chat", b'{"a":1}', {"anthropic-beta": "x"})).read()
        await client.aclose()
    ((head, body),) = seen
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat HTTP/1.1"
    assert f"host: 127.0.0.1:{port}" in lines
    assert "authorization: Bearer k" in lines and "anthropic-beta: x" in lines
    assert body == b'{"a":1}'


async def test_chunked_and_gzip_bodies_are_decoded() -> None:
    packed = gzip.compress(b'{"answer": "hello"}')
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
    response = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n" + chunked
    )
    async with raw_server(answering(response)) as (port, _):
        client = upstream(port)
        reply = await client.post("/chat", b"{}", None)
        body = await reply.read()
        await client.aclose()
    assert body == b'{"answer": "hello"}'
    assert reply.headers["content-encoding"] == "gzip"


async def test_a_body_ended_by_closing_is_read_whole_and_the_connection_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        await writer.drain()

    async with raw_server(handler) as (port, connections):
        client = upstream(port)
        assert await (await client.post("/chat", b"{}", None)).read() == b"all of it"
        assert await (await client.post("/chat", b"{}", None)).read() == b"all of it"
        await client.aclose()
    assert len(connections) == 2


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused() -> None:
    async with raw_server(answering(ok(b"once"))) as (port, connections):
        client = upstream(port)
        assert await (await client.post("/chat", b"{}", None)).read() == b"once"
        await asyncio.sleep(0.05)  # the server hangs up after one answer
        assert await (await client.post("/chat", b"{}", None)).read() == b"once"
        await client.aclose()
    assert len(connections) == 2


async def test_a_connection_that_spoke_while_idle_is_not_reused() -> None:
    """Some servers send a 408 on an idle connection before hanging up; it must not be taken
    for the answer to the next request."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"fine"))
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()  # holds the connection open until the client closes it

    async with raw_server(handler) as (port, connections):
        client = upstream(port)
        assert await (await client.post("/chat", b"{}", None)).read() == b"fine"
        await asyncio.sleep(0.05)
        second = await client.post("/chat", b"{}", None)
        assert (second.status, await second.read()) == (200, b"fine")
        await client.aclose()
    assert len(connections) == 2


async def test_garbage_instead_of_http_is_a_connection_error_for_the_provider() -> None:
    async with raw_server(answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as (port, _):
        http = HttpUpstream(f"http://127.0.0.1:{port}/v1", {}, Timeouts())
        with pytest.raises(ProviderError) as caught:
            await http.post("/chat", {})
        await http.aclose()
    assert caught.value.code == "connection_error"


async def test_a_stalled_upstream_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handler) as (port, _):
        http = HttpUpstream(f"http://127.0.0.1:{port}/v1", {}, Timeouts(total_s=0.2))
        with pytest.raises(ProviderError) as caught:
            await http.post("/chat", {})
        await http.aclose()
    assert caught.value.code == "timeout_read"


async def test_a_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "_MAX_BODY", 1 << 20)
    bomb = gzip.compress(b"\0" * (20 << 20))  # 20 MiB of zeros in ~20 KB
    async with raw_server(answering(ok(bomb, b"content-encoding: gzip"))) as (port, _):
        client = upstream(port)
        reply = await client.post("/chat", b"{}", None)
        with pytest.raises(pool.ProtocolError, match="too large"):
            await reply.read()
        await client.aclose()


async def test_a_header_that_would_split_the_request_is_refused_and_nothing_sent() -> None:
    async with raw_server(answering(ok(b""))) as (port, connections):
        client = upstream(port)
        with pytest.raises(ValueError, match="anthropic-beta"):
            await client.post("/chat", b"{}", {"anthropic-beta": "x\r\nx-injected: 1"})
        await client.aclose()
    assert connections == []


@pytest.mark.parametrize("way", ["as it arrives", "whole"])
async def test_a_body_larger_than_the_read_buffer_arrives_whole(
    monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """Past the buffer the socket pauses until the reader catches up, a slow one included;
    a buffered read takes the body as it arrives, so it never waits on its own pause."""
    monkeypatch.setattr(pool, "_PAUSE_AT", 64 << 10)
    payload = bytes(range(256)) * 8192  # 2 MiB

    async with raw_server(answering(ok(payload))) as (port, _):
        client = upstream(port)
        reply = await client.post("/chat", b"{}", None)
        if way == "whole":
            received = await reply.read()
        else:
            received = b""
            async for chunk in reply.chunks():
                received += chunk
                await asyncio.sleep(0)
        await client.aclose()
    assert received == payload


async def test_endless_headers_are_refused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(100_000):
            writer.write(b"x-filler-%d: %s\r\n" % (n, b"y" * 100))
            await writer.drain()

    async with raw_server(handler) as (port, _):
        client = upstream(port)
        with pytest.raises(pool.ProtocolError, match="headers are too large"):
            await client.post("/chat", b"{}", None)
        await client.aclose()


# TLS: a certificate authority and a server certificate for 127.0.0.1, made for the test and
# trusted through SSL_CERT_FILE, which the default context reads as the system store. The
# process builds that context once; each test starts from the store as it set it.


@pytest.fixture(autouse=True)
def fresh_trust_store() -> Iterator[None]:
    pool._tls_context.cache_clear()
    yield
    pool._tls_context.cache_clear()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockgate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def server_context(tls_files: tuple[Path, Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files[1], tls_files[2])
    return context


async def test_https_upstreams_are_verified_against_the_trust_store(
    tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with raw_server(answering(ok(b"secure")), server_context(tls_files)) as (port, _):
        untrusting = upstream(port, "https")
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.post("/chat", b"{}", None)
        await untrusting.aclose()

        monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
        pool._tls_context.cache_clear()
        client = upstream(port, "https")
        assert await (await client.post("/chat", b"{}", None)).read() == b"secure"
        await client.aclose()


async def test_https_goes_through_a_connect_tunnel_when_a_proxy_is_named(
    tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tunnels: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        tunnels.append(head.split(b"\r\n")[0])
        host, _, port = head.split()[1].decode().rpartition(":")
        far_reader, far_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, far_writer), pipe(far_reader, writer))

    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    async with (
        raw_server(answering(ok(b"tunnelled")), server_context(tls_files)) as (port, _),
        raw_server(proxy) as (proxy_port, _),
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
        client = upstream(port, "https")
        assert await (await client.post("/chat", b"{}", None)).read() == b"tunnelled"
        await client.aclose()
    assert tunnels == [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()]


async def test_a_proxy_that_refuses_the_tunnel_is_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusing = answering(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
    async with raw_server(refusing) as (proxy_port, _):
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
        http = HttpUpstream("https://upstream.invalid/v1", {}, Timeouts())
        with pytest.raises(ProviderError) as caught:
            await http.post("/chat", {})
        await http.aclose()
    assert caught.value.code == "connection_error"


async def test_work_put_off_runs_while_the_request_is_upstream() -> None:
    """What the gateway put off (access lines) is done in the upstream's round trip, not later
    on the path of the next request: it has run by the time the upstream reads the request."""
    done: list[str] = []
    seen_by_upstream: list[list[str]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        seen_by_upstream.append(list(done))
        writer.write(ok(b"{}"))
        await writer.drain()

    async with raw_server(handler) as (port, _):
        client = upstream(port)
        defer(lambda: done.append("access line"))
        await (await client.post("/chat", b"{}", None)).read()
        await client.aclose()
    assert seen_by_upstream == [["access line"]]
