"""Calibrates the "I don't know" threshold: the best query-chunk cosine below which retrieval
counts as having found nothing (`lockgate.rag.retrieval.DEFAULT_MIN_SIMILARITY`).

    .venv/bin/python -m bench.retrieval_threshold

The shipped support knowledge base (samples/support-kb/docs) is ingested with the real service
and MiniLM. Answerable questions are its FAQ questions reworded by hand (the originals are the
section headings, so they would match too easily); unanswerable ones are 300 XQuAD questions
(sport, history, science: what a support bot gets asked off-topic) plus hand-written
support-sounding questions the KB does not cover. For each threshold: the share of answerable
questions still answered, and the share of unanswerable ones wrongly answered.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.rag import wiring
from lockgate.rag.folders import ingest_paths

from bench.retrieval_data import RESULTS, ROOT, xquad

KB = ROOT / "samples" / "support-kb" / "docs"

ANSWERABLE = [
    ("How many days do I have to send something back?", "returns-and-refunds.md"),
    ("I want my money back for a purchase, how does that work?", "returns-and-refunds.md"),
    ("Is it possible to return an item bought on clearance?", "returns-and-refunds.md"),
    ("The thing I got is broken from delivery, what now?", "returns-and-refunds.md"),
    ("I lost the receipt, can I still bring it back?", "returns-and-refunds.md"),
    ("What happens if the price goes down after I bought it?", "returns-and-refunds.md"),
    ("How long is the guarantee on your products?", "returns-and-refunds.md"),
    ("You sent me the wrong product.", "returns-and-refunds.md"),
    ("When will my parcel arrive?", "shipping-and-delivery.md"),
    ("Do you deliver abroad?", "shipping-and-delivery.md"),
    ("Where is my package right now?", "shipping-and-delivery.md"),
    ("Can I get faster delivery?", "shipping-and-delivery.md"),
    ("I moved, can the delivery address be updated?", "shipping-and-delivery.md"),
    ("Which cards can I pay with?", "payments-and-promotions.md"),
    ("Can two coupon codes be combined?", "payments-and-promotions.md"),
    ("My coupon does not work at checkout.", "payments-and-promotions.md"),
    ("Is there a rewards scheme for regular customers?", "payments-and-promotions.md"),
    ("Is my credit card information safe with you?", "payments-and-promotions.md"),
    ("I forgot my password.", "account-and-privacy.md"),
    ("How do I sign up?", "account-and-privacy.md"),
    ("How do I stop getting your marketing emails?", "account-and-privacy.md"),
    ("What do you do with my personal data?", "account-and-privacy.md"),
    ("Can I buy something before it is released?", "orders.md"),
    ("Can I cancel a purchase I just made?", "orders.md"),
    ("Can I buy as a guest without registering?", "orders.md"),
    ("Do you offer gift wrap?", "orders.md"),
    ("Can I get an invoice for my purchase?", "orders.md"),
    ("Can you make a personalised item for me?", "orders.md"),
    ("When are you open?", "contact-and-services.md"),
    ("How can I talk to a human?", "contact-and-services.md"),
    ("Are you hiring?", "contact-and-services.md"),
    ("Will someone install the product for me?", "contact-and-services.md"),
]

OFF_TOPIC = [
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
    "Who won the football world cup in 2014?",
    "Can you recommend a good laptop for gaming?",
    "Do you sell car insurance?",
    "What is the interest rate on your mortgage products?",
    "How do I configure my router's firewall?",
    "Explain quantum entanglement simply.",
    "What are the side effects of ibuprofen?",
    "Can I bring my dog into your physical store?",
    "Do you have a store in Berlin?",
    "How many employees does your company have?",
]


async def main() -> None:
    embedder = MiniLMEmbedder()
    rng = random.Random(11)
    questions = list(xquad().queries.values())
    unanswerable = rng.sample(questions, 300) + OFF_TOPIC
    with tempfile.TemporaryDirectory() as tmp:
        rag = wiring.embedded(Path(tmp), embedder=embedder)
        started = time.perf_counter()
        results = await ingest_paths(rag.ingestion, [KB], tenant="bench", collection="support")
        ingest_s = time.perf_counter() - started
        chunks = sum(r.chunks for r in results)

        async def best(query: str) -> tuple[float, str]:
            hits = await rag.retriever.retrieve("bench", "support", query, 5, min_similarity=-1.0)
            top = max((h.similarity or -1.0 for h in hits), default=-1.0)
            return top, Path(hits[0].uri).name if hits else ""

        inside = [await best(q) for q, _ in ANSWERABLE]
        outside = [(await best(q))[0] for q in unanswerable]
        await rag.aclose()
    top_file_ok = sum(name == want for (_, name), (_, want) in zip(inside, ANSWERABLE, strict=True))
    ins = np.array([s for s, _ in inside])
    out = np.array(outside)
    lines = [
        "# Don't-know threshold calibration",
        "",
        f"Support KB: {len(results)} files, {chunks} chunks (ingested in {ingest_s:.1f} s)."
        f" {len(ANSWERABLE)} answerable reworded questions (top hybrid hit from the right file:"
        f" {top_file_ok}/{len(ANSWERABLE)}), {len(unanswerable)} unanswerable ones"
        f" ({len(unanswerable) - len(OFF_TOPIC)} XQuAD + {len(OFF_TOPIC)} off-topic support-ish).",
        "",
        "Best cosine per question: answerable"
        f" min {ins.min():.3f} / p10 {np.percentile(ins, 10):.3f} / median {np.median(ins):.3f};"
        f" unanswerable median {np.median(out):.3f} / p90 {np.percentile(out, 90):.3f}"
        f" / max {out.max():.3f}.",
        "",
        "| threshold | answerable answered | unanswerable answered (false) |",
        "|---:|---:|---:|",
    ]
    chosen = None
    for threshold in np.arange(0.20, 0.56, 0.025):
        answered = float((ins >= threshold).mean())
        false = float((out >= threshold).mean())
        lines.append(f"| {threshold:.3f} | {answered:.1%} | {false:.1%} |")
        if answered >= 0.95:
            chosen = (threshold, answered, false)
    if chosen:
        lines += [
            "",
            f"Highest threshold keeping at least 95% of answerable questions: {chosen[0]:.3f}"
            f" ({chosen[1]:.1%} answered, {chosen[2]:.1%} false answers).",
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retrieval_threshold.md").write_text(report)


if __name__ == "__main__":
    asyncio.run(main())
