"""Applies an alias's injection policy to a request or to retrieved chunks.

Untrusted text is what users and tools wrote (`user`, `tool`, `function` messages) and what
retrieval found; system, developer and assistant messages are the operator's and the model's.
Actions: `block` refuses with 400 `content_policy` and the reason; `flag` lets it through and
reports it (`x-lockgate-safety` header and the log); `strip` removes the offending messages or
chunks (and blocks when nothing the user wrote is left); `off` skips the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lockgate.chat import ChatRequest
from lockgate.errors import GatewayError
from lockgate.policy import SafetyPolicy
from lockgate.safety.injection import InjectionDetector, Verdict

UNTRUSTED_ROLES = frozenset({"user", "tool", "function"})
SAFETY_HEADER = "x-lockgate-safety"
SURE_LAYERS = frozenset({"rules"})
"""Layers precise enough to act on text that was not written as a chat prompt."""


@dataclass(slots=True)
class GuardResult:
    request: ChatRequest
    verdict: Verdict | None
    headers: dict[str, str] = field(default_factory=dict)
    removed: tuple[int, ...] = ()
    """Message indexes removed by `strip`."""


@dataclass(slots=True)
class ChunkResult:
    kept: tuple[int, ...]
    """Indexes of the chunks to pass to the model, in order."""
    verdict: Verdict | None
    headers: dict[str, str] = field(default_factory=dict)


def untrusted_messages(request: ChatRequest) -> list[int]:
    return [i for i, m in enumerate(request.messages) if m.role in UNTRUSTED_ROLES and m.text()]


def content_policy_error(verdict: Verdict, where: str) -> GatewayError:
    return GatewayError(
        400,
        f"Possible prompt injection in {where}: {verdict.reason}. "
        "The request was blocked by this model's safety policy.",
        code="content_policy",
    )


class InjectionGuard:
    def __init__(self, detector: InjectionDetector) -> None:
        self._detector = detector

    async def check_request(self, request: ChatRequest, policy: SafetyPolicy) -> GuardResult:
        if policy.injection_action == "off":
            return GuardResult(request, None)
        indexes = untrusted_messages(request)
        if not indexes:
            return GuardResult(request, None)
        verdict = await self._detector.scan(
            [request.messages[i].text() for i in indexes],
            threshold=policy.injection_threshold,
        )
        if not verdict.injection:
            return GuardResult(request, verdict)
        offending = tuple(indexes[i] for i in verdict.offending)
        where = f"message {offending[0]}"
        if policy.injection_action == "block":
            raise content_policy_error(verdict, where)
        headers = {SAFETY_HEADER: _header(verdict, policy.injection_action)}
        if policy.injection_action == "flag":
            return GuardResult(request, verdict, headers)
        kept = [m for i, m in enumerate(request.messages) if i not in offending]
        if not any(m.role == "user" for m in kept):
            raise content_policy_error(verdict, where)
        return GuardResult(
            request.model_copy(update={"messages": kept}), verdict, headers, offending
        )

    async def check_chunks(self, chunks: Sequence[str], policy: SafetyPolicy) -> ChunkResult:
        """For retrieved text. `block` refuses the request (the answer would rest on a
        poisoned document); `strip` keeps only the clean chunks; `flag` keeps all.

        Only the rule layer acts on documents: help pages are written as instructions ("open
        Settings and click..."), and the classifier, trained on chat prompts, has seen few
        documents; its verdicts on chunks are flagged, never acted on."""
        everything = tuple(range(len(chunks)))
        if policy.injection_action == "off" or not chunks:
            return ChunkResult(everything, None)
        verdict = await self._detector.scan(list(chunks), threshold=policy.injection_threshold)
        if not verdict.injection:
            return ChunkResult(everything, verdict)
        acted = tuple(t.index for t in verdict.texts if t.injection and t.layer in SURE_LAYERS)
        if policy.injection_action == "flag" or not acted:
            return ChunkResult(everything, verdict, {SAFETY_HEADER: _header(verdict, "flag")})
        if policy.injection_action == "block":
            raise content_policy_error(verdict, f"retrieved document chunk {acted[0]}")
        headers = {SAFETY_HEADER: _header(verdict, "strip")}
        return ChunkResult(tuple(i for i in everything if i not in acted), verdict, headers)


def _header(verdict: Verdict, action: str) -> str:
    outcome = "flagged" if action == "flag" else "stripped"
    return f"{outcome}; layer={verdict.layer}; score={verdict.score:.2f}"
