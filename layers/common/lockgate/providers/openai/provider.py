"""The OpenAI provider adapter: chat completions over the shared pooled HTTP client.

Requests and responses stay plain JSON (see `translate`); the wire details the official SDK used
to supply are here: bearer auth, the organization header, the error envelope, in-stream error
events and the `[DONE]` sentinel. The SDK is kept for callers and tests, off the hot path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import OpenAIProviderConfig, Timeouts
from lockgate.providers import errors, http
from lockgate.providers.openai.translate import chunk_from, request_body, result_from

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_PATH = "/chat/completions"
_MAX_MESSAGE = 300
_DONE = b"[DONE]"


class OpenAIProvider:
    def __init__(self, name: str, config: OpenAIProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        api_key = config.api_key or "unused"
        headers = {"authorization": f"Bearer {api_key}"}
        if config.organization:
            headers["openai-organization"] = config.organization
        headers.update(config.headers)
        base_url = config.base_url or DEFAULT_BASE_URL
        self._http = http.HttpUpstream(base_url, headers, timeouts)

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        reply = await self._http.post(_PATH, request_body(request, model))
        if reply.status >= 400:
            raise _status_error(reply)
        try:
            return result_from(http.decode(reply.body))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise errors.malformed(type(exc).__name__) from None

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        body = request_body(request, model)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        response = await self._http.open_stream(_PATH, body)
        if response.status >= 400:
            raise _status_error(await http.read_error(response))
        finish: ChatChunk | None = None
        done = False
        events = http.events(response)
        try:
            async for event in events:
                # After `[DONE]` read on to the end of the body, so the connection is reused.
                done = done or event.data.startswith(_DONE)
                if done:
                    continue
                chunk = chunk_from(_event_data(event))
                if finish is not None:
                    finish.usage = chunk.usage or finish.usage
                    continue
                if chunk.finish_reason:
                    finish = chunk
                    continue
                if chunk.text or chunk.tool_calls:
                    yield chunk
        except errors.ProviderError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise errors.malformed(type(exc).__name__) from None
        except Exception as exc:  # the transport failed mid-body
            if finish is None:
                raise errors.connection_failed(type(exc).__name__) from None
        finally:
            await events.aclose()
            response.close()  # a no-op once the body was read and the connection released
        if finish is not None:
            yield finish

    async def aclose(self) -> None:
        await self._http.aclose()


def _event_data(event: http.Event) -> dict[str, Any]:
    """An event's JSON; an `error` in it is the upstream failing
    mid-stream, after its 200."""
    data = http.decode(event.data)
    if isinstance(data, dict) and data.get("error"):
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else None
        detail = message if isinstance(message, str) else "An error occurred during streaming"
        raise errors.ProviderError(
            f"upstream reported an error mid-stream: {detail[:_MAX_MESSAGE]}",
            kind=errors.ErrorKind.RETRYABLE,
            code="upstream_stream_error",
        )
    if not isinstance(data, dict):
        raise TypeError("event is not a JSON object")
    return data


def _status_error(reply: http.Reply) -> errors.ProviderError:
    retry_after = http.retry_after(reply.headers)
    return errors.from_status(reply.status, _upstream_message(reply), retry_after)


def _upstream_message(reply: http.Reply) -> str:
    """The envelope's `error.message`, else the status and whatever the body said."""
    text = reply.body.decode("utf-8", "replace").strip()
    try:
        body: Any = http.decode(text) if text else None
    except ValueError:
        return (text or f"Error code: {reply.status}")[:_MAX_MESSAGE]
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])[:_MAX_MESSAGE]
    return f"Error code: {reply.status} - {body}"[:_MAX_MESSAGE]
