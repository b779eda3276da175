"""The Bedrock provider adapter, through boto3's `bedrock-runtime` Converse API.

boto3 blocks, so every call runs in a worker thread and the event loop keeps serving other
requests. botocore's retries are off (`total_max_attempts=1`): the gateway's executor owns
retry and fallback, and a hidden retry would double the wait and hide the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import boto3
import urllib3
from botocore.config import Config
from botocore.eventstream import ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import BedrockProviderConfig, Timeouts
from lockgate.providers import errors
from lockgate.providers.bedrock.stream import StreamTranslator, iterate_in_thread
from lockgate.providers.bedrock.translate import converse_arguments, result_from

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

CODE_STATUS = {
    "throttlingexception": 429,
    "toomanyrequestsexception": 429,
    "servicequotaexceededexception": 429,
    "modelnotreadyexception": 429,
    "serviceunavailableexception": 503,
    "internalserverexception": 500,
    "modelstreamerrorexception": 502,
    "modelerrorexception": 502,
    "modeltimeoutexception": 408,
    "validationexception": 400,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 401,
    "resourcenotfoundexception": 404,
}
"""Status by error code. Errors inside an event stream carry no HTTP status, and some codes
(a model that is still loading, a model-side failure) mean something else than their status."""

_MAX_MESSAGE = 300


class BedrockProvider:
    def __init__(
        self,
        name: str,
        config: BedrockProviderConfig,
        timeouts: Timeouts,
        *,
        client: BedrockRuntimeClient | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._timeouts = timeouts
        self._client = client
        self._client_lock = asyncio.Lock()

    async def client(self) -> BedrockRuntimeClient:
        """The boto3 client, made on first use (in a thread: it reads files and the network
        for credentials) so that a configured but unused provider costs nothing."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._make_client)
        return self._client

    def _make_client(self) -> BedrockRuntimeClient:
        config = Config(
            connect_timeout=self._timeouts.connect_s,
            read_timeout=self._timeouts.total_s,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        try:
            return boto3.session.Session().client(
                "bedrock-runtime",
                region_name=self._config.region,
                endpoint_url=self._config.endpoint_url,
                config=config,
            )
        except BotoCoreError as exc:
            raise provider_error(exc) from None

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        arguments = converse_arguments(request, model)
        client = await self.client()
        response = await _call(client.converse, arguments)
        return result_from(response)

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        arguments = converse_arguments(request, model)
        client = await self.client()
        response = await _call(client.converse_stream, arguments)
        events = response["stream"]
        translator = StreamTranslator()
        reader = iterate_in_thread(events, close=events.close, interrupt=_interrupter(events))
        async with aclosing(reader) as items:
            try:
                async for event in items:
                    chunk = translator.feed(dict(event))
                    if chunk is not None:
                        yield chunk
            except (BotoCoreError, ClientError) as exc:
                raise provider_error(exc) from None
            except (urllib3.exceptions.HTTPError, OSError, ParserError, ValueError) as exc:
                raise read_error(exc) from None
        final = translator.final()
        if final is not None:
            yield final

    async def aclose(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)


def _interrupter(events: Any) -> Callable[[], None]:
    """Shuts down the read side of the stream's socket, waking a read blocked in another thread.

    urllib3's `shutdown()` exists for exactly this; botocore's `EventStream` keeps the urllib3
    response private, hence the guarded lookup. Without it, a stalled stream's thread lingers
    until the read timeout; nothing else changes.
    """
    raw = getattr(events, "_raw_stream", None)

    def interrupt() -> None:
        shutdown = getattr(raw, "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                shutdown()

    return interrupt


async def _call(method: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    try:
        return await asyncio.to_thread(method, **arguments)
    except (BotoCoreError, ClientError) as exc:
        raise provider_error(exc) from None


def provider_error(exc: BotoCoreError | ClientError) -> errors.ProviderError:
    """The taxonomy's error for a botocore exception."""
    if isinstance(exc, ClientError):
        return client_error(exc)
    if isinstance(exc, ReadTimeoutError):
        return errors.timed_out("read")
    if isinstance(exc, ConnectTimeoutError):
        return errors.timed_out("connect")
    if isinstance(exc, ResponseStreamingError):
        return errors.stream_cut()
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return errors.ProviderError(
            f"bedrock is not configured: {exc}", kind=errors.ErrorKind.TARGET, code="not_configured"
        )
    if isinstance(exc, ParamValidationError):
        return errors.ProviderError(
            f"bedrock refused the request: {exc}"[:_MAX_MESSAGE],
            kind=errors.ErrorKind.REQUEST,
            status=400,
            code="invalid_request",
        )
    return errors.connection_failed(type(exc).__name__)


def read_error(exc: Exception) -> errors.ProviderError:
    """A failure while reading the event stream, which botocore passes up unwrapped."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return errors.timed_out("read")
    if isinstance(exc, ParserError | ValueError):
        return errors.malformed(type(exc).__name__)
    return errors.stream_cut()


def client_error(exc: ClientError) -> errors.ProviderError:
    error: dict[str, Any] = dict(exc.response.get("Error") or {})
    metadata: dict[str, Any] = dict(exc.response.get("ResponseMetadata") or {})
    code = str(error.get("Code") or "")
    status = CODE_STATUS.get(code.lower()) or metadata.get("HTTPStatusCode") or 500
    message = f"bedrock {status} {code}: {error.get('Message') or ''}".strip()
    headers = metadata.get("HTTPHeaders") or {}
    retry_after = errors.parse_retry_after(headers.get("retry-after"))
    return errors.from_status(status, message[:_MAX_MESSAGE], retry_after=retry_after)
