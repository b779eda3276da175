"""Converse stream events → canonical chunks, and the thread that reads the event stream.

boto3 is synchronous: reading the event stream blocks on the socket, so a thread reads it and
hands events to the event loop through a queue. Leaving the stream early (cancellation, a
client that went away) shuts the socket down under the thread's blocked read, so the thread
ends and closes the connection promptly, which stops the upstream generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, TypeVar

from lockgate.chat import ChatChunk, Usage
from lockgate.providers.bedrock.translate import finish_reason, usage_from
from lockgate.providers.blocks import ToolCallDeltas

T = TypeVar("T")


class StreamTranslator:
    """Turns `converse_stream` event dicts into chunks.

    The final chunk waits for the end of the stream: `messageStop` carries the stop reason but
    the usage comes after it, in `metadata`. Without `messageStop` there is no final chunk.
    """

    def __init__(self) -> None:
        self._tool_calls = ToolCallDeltas()
        self._stop_reason: str | None = None
        self._stopped = False
        self._usage: Usage | None = None

    def feed(self, event: dict[str, Any]) -> ChatChunk | None:
        if "contentBlockStart" in event:
            return self._on_block_start(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return self._on_block_delta(event["contentBlockDelta"])
        if "messageStop" in event:
            self._stopped = True
            self._stop_reason = event["messageStop"].get("stopReason")
        elif "metadata" in event and event["metadata"].get("usage"):
            self._usage = usage_from(event["metadata"]["usage"])
        return None

    def _on_block_start(self, event: dict[str, Any]) -> ChatChunk | None:
        use = (event.get("start") or {}).get("toolUse")
        if not use:
            return None
        block = event.get("contentBlockIndex", 0)
        return self._tool_calls.start(block, use.get("toolUseId", ""), use.get("name", ""))

    def _on_block_delta(self, event: dict[str, Any]) -> ChatChunk | None:
        delta = event.get("delta") or {}
        if delta.get("text"):
            return ChatChunk(text=delta["text"])
        reasoning = delta.get("reasoningContent")
        if reasoning:
            return ChatChunk(
                thinking=reasoning.get("text") or "", signature=reasoning.get("signature") or ""
            )
        arguments = (delta.get("toolUse") or {}).get("input")
        if not arguments:
            return None
        return self._tool_calls.arguments(event.get("contentBlockIndex", 0), arguments)

    def final(self) -> ChatChunk | None:
        if not self._stopped:
            return None
        return ChatChunk(finish_reason=finish_reason(self._stop_reason), usage=self._usage)


def _nothing() -> None:
    return None


async def iterate_in_thread(
    items: Iterable[T],
    *,
    close: Callable[[], None],
    interrupt: Callable[[], None] = _nothing,
) -> AsyncGenerator[T, None]:
    """Items of a blocking iterable, read in a daemon thread, without blocking the loop.

    An exception raised while reading is re-raised here. The reading thread closes the
    iterable itself when it stops: closing a stream from another thread would wait for the
    pending read to finish (the buffered reader's lock), blocking the loop. Leaving early calls
    `interrupt` instead, which must not block, to make that pending read return at once.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stopping = threading.Event()

    def post(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def pump() -> None:
        outcome: tuple[str, Any] = ("end", None)
        try:
            for item in items:
                if stopping.is_set():
                    break
                post("item", item)
        except BaseException as exc:
            outcome = ("error", exc)
        finally:
            with contextlib.suppress(Exception):
                close()
        post(*outcome)

    threading.Thread(target=pump, name="bedrock-stream", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        if not stopping.is_set():
            stopping.set()
            interrupt()
