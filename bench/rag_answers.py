"""Generated or extractive? Answers of the bundled SmolLM2-135M on the sample knowledge base.

    .venv/bin/python -m bench.rag_answers

The sample KB (samples/support-kb/docs, MakTek support FAQ, Apache-2.0) is ingested with the
real service and MiniLM; each question is retrieved as `support-bot` does (top 3, the default
context budget) and answered three ways: the model's answer to the grounded prompt, that answer
replaced by the extractive one when the check (`rag.extractive.is_weak`) finds it says nothing
from its sources, and always extractive. Score: how much of the FAQ's own answer the reply
carries (recall of its content words) and how much of the reply is in it (precision); "useful"
= recall at least 0.5. Questions: the FAQ's first 30 questions as users would ask them (the
headings) and the 32 reworded ones of `bench.retrieval_threshold`, scored on whether the reply
carries content of the gold file.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from lockgate.chat import ChatMessage, ChatRequest
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.policy import LocalProviderConfig, RagBinding, Timeouts
from lockgate.providers.local.provider import LocalProvider
from lockgate.rag import wiring
from lockgate.rag.extractive import content_words, extractive_answer, is_weak
from lockgate.rag.folders import ingest_paths
from lockgate.rag.prompt import grounded_request

from bench.retrieval_data import RESULTS
from bench.retrieval_threshold import ANSWERABLE, KB

FAQ = (
    Path(__file__).resolve().parents[2]
    / "shared/data/support-kb/maktek-customer-support-faqs/customer_support_faqs.dedup.json"
)
QUESTIONS = 30
MAX_TOKENS = 80


def scores(reply: str, gold: str) -> tuple[float, float]:
    got, want = content_words(reply), content_words(gold)
    overlap = len(got & want)
    return overlap / max(len(want), 1), overlap / max(len(got), 1)


async def main() -> None:
    started = time.perf_counter()
    faq = json.loads(FAQ.read_text())[:QUESTIONS]
    embedder = MiniLMEmbedder()
    model = LocalProvider("local", LocalProviderConfig(kind="local"), Timeouts())
    budget = RagBinding(collection="support").context_tokens
    rows: list[tuple[str, str, str, str]] = []  # generated, checked, extractive, gold
    weak = 0
    with tempfile.TemporaryDirectory() as tmp:
        rag = wiring.embedded(Path(tmp), embedder=embedder)
        await ingest_paths(rag.ingestion, [KB], tenant="bench", collection="support")
        asked = [(str(item["question"]), str(item["answer"])) for item in faq]
        files = {name: (KB / name).read_text() for _, name in ANSWERABLE}
        asked += [(q, files[name]) for q, name in ANSWERABLE]
        for question, gold in asked:
            chunks = await rag.retriever.retrieve("bench", "support", question, 3)
            request = ChatRequest(
                model="support-bot",
                messages=[ChatMessage(role="user", content=question)],
                max_tokens=MAX_TOKENS,
                temperature=0,
            )
            grounded, used = grounded_request(request, chunks, max_context_tokens=budget)
            generated = (await model.complete(grounded, "smollm2-135m-instruct")).text
            extractive = extractive_answer(question, used)
            weak += is_weak(generated, used)
            checked = extractive if is_weak(generated, used) else generated
            rows.append((generated, checked, extractive, gold))
        await rag.aclose()
    await model.aclose()
    embedder.close()

    lines = [
        "# RAG answers of the bundled model (SmolLM2-135M) on the sample knowledge base",
        "",
        f"{QUESTIONS} FAQ questions (gold: the FAQ's answer) + {len(ANSWERABLE)} reworded "
        "questions (gold: the right file's text, so only recall against it is meaningful); "
        f"top 3 chunks, {budget}-token context budget, greedy decoding, {MAX_TOKENS} tokens.",
        "",
        "| answer | FAQ recall | FAQ precision | FAQ useful (recall >= 0.5) | reworded: carries "
        "5+ content words of the gold file |",
        "|---|---:|---:|---:|---:|",
    ]
    n = len(faq)
    for index, label in enumerate(("generated", "generated, weak ones extractive", "extractive")):
        faq_scores = np.array([scores(r[index], r[3]) for r in rows[:n]])
        reworded = [len(content_words(r[index]) & content_words(r[3])) >= 5 for r in rows[n:]]
        lines.append(
            f"| {label} | {faq_scores[:, 0].mean():.2f} | {faq_scores[:, 1].mean():.2f} | "
            f"{(faq_scores[:, 0] >= 0.5).mean():.0%} | {np.mean(reworded):.0%} |"
        )
    lines += [
        "",
        f"The check found {weak} of {len(rows)} generated answers weak.",
        "",
        "Examples (question → generated | extractive):",
        "",
        *[
            f"- {q} → {r[0][:160]!r} | {r[2][:160]!r}"
            for (q, _), r in list(zip(asked, rows, strict=True))[:4]
        ],
        "",
        f"Run time {time.perf_counter() - started:.0f} s.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rag_answers.md").write_text(report)


if __name__ == "__main__":
    asyncio.run(main())
