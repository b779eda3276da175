"""Retrieval-augmented answers through the HTTP API: upload, ask, cite, don't know."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from lockgate.tenants import Tenant, hash_key

from tests.support.servers import RunningGateway, gateway, mock_policy

OTHER_KEY = "lg-rag-other-tenant-0123456789"
RETURNS = (
    b"# Returns policy\n\nYou can return any item within 30 days of delivery for a full refund. "
    b"Items must be unused and in their original packaging.\n\n## Refund timing\n\n"
    b"Refunds are issued to the original payment method within 5 business days."
)
SHIPPING = (
    b"# Shipping\n\nStandard shipping to Norway takes 4 to 6 working days. Express shipping "
    b"takes 2 days and costs 15 euros."
)


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "support": {"targets": ["mock/gpt-rag"], "rag": {"collection": "help"}},
            "quoting": {
                "targets": ["mock/gpt-quote"],
                "rag": {"collection": "help", "answer": "extract", "context_tokens": 100},
            },
            "plain": {"targets": ["mock/gpt-plain"]},
        },
        cache={"enabled": True},
    )
    with gateway(policy, tmp_path_factory.mktemp("rag")) as running:
        running.app.state.container.keys.add(hash_key(OTHER_KEY), Tenant("other"))
        yield running


def upload(
    gw: RunningGateway, collection: str, name: str, body: bytes, key: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{gw.v1}/collections/{collection}/documents",
        params={"filename": name},
        content=body,
        headers={"authorization": f"Bearer {key or gw.api_key}"},
        timeout=60,
    )


@pytest.fixture(scope="module")
def indexed(gw: RunningGateway) -> None:
    for name, body in (("returns.md", RETURNS), ("shipping.md", SHIPPING)):
        response = upload(gw, "help", name, body)
        assert response.status_code == 201, response.text
        assert response.json()["outcome"] in ("indexed", "unchanged")


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=60)


def test_answer_carries_its_sources(client: openai.OpenAI, indexed: None, upstream: str) -> None:
    completion = client.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "How many days do I have to return an item?"}],
    )
    sources = (completion.model_extra or {})["lockgate"]["sources"]
    assert sources and sources[0]["title"] and sources[0]["uri"].endswith("returns.md")
    assert {"document_id", "chunk", "score", "snippet"} <= set(sources[0])


def test_the_context_budget_and_answer_mode_are_reported(
    client: openai.OpenAI, indexed: None
) -> None:
    completion = client.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "How many days do I have to return an item?"}],
    )
    extension = (completion.model_extra or {})["lockgate"]
    assert extension["context_budget"] == 1200
    assert 0 < extension["context_tokens"] <= extension["context_budget"]
    assert extension["answer_mode"] in ("generated", "extractive")


def test_an_extractive_alias_quotes_the_answering_sentence_without_a_model_call(
    client: openai.OpenAI, indexed: None, upstream: str
) -> None:
    before = httpx.get(f"{upstream}/_mock/stats").json()["requests"].get("gpt-quote", 0)
    for stream in (False, True):
        response = client.chat.completions.create(
            model="quoting",
            messages=[{"role": "user", "content": "When are refunds issued?"}],
            stream=stream,
        )
        if stream:
            chunks = list(response)  # type: ignore[arg-type]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            extension = next(
                (c.model_extra or {})["lockgate"]
                for c in chunks
                if (c.model_extra or {}).get("lockgate")
            )
        else:
            text = response.choices[0].message.content or ""  # type: ignore[union-attr]
            extension = (response.model_extra or {})["lockgate"]  # type: ignore[union-attr]
        assert (
            text == "Refunds are issued to the original payment method within 5 business days. [1]"
        )
        assert extension["answer_mode"] == "extractive"
        assert extension["context_budget"] == 100
        assert "within 5 business days" in extension["sources"][0]["snippet"]
    assert httpx.get(f"{upstream}/_mock/stats").json()["requests"].get("gpt-quote", 0) == before


def test_streaming_answer_has_sources_in_the_final_chunk(
    client: openai.OpenAI, indexed: None
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="support",
            messages=[{"role": "user", "content": "How long does shipping to Norway take?"}],
            stream=True,
        )
    )
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert final and (final[0].model_extra or {})["lockgate"]["sources"][0]["uri"].endswith(
        "shipping.md"
    )


def test_nothing_relevant_is_a_dont_know_without_a_model_call(
    client: openai.OpenAI, indexed: None, upstream: str
) -> None:
    before = httpx.get(f"{upstream}/_mock/stats").json()["requests"].get("gpt-rag", 0)
    raw = client.chat.completions.with_raw_response.create(
        model="support",
        messages=[{"role": "user", "content": "What is the boiling point of liquid nitrogen?"}],
    )
    completion = raw.parse()
    assert "know" in (completion.choices[0].message.content or "").lower()
    assert (completion.model_extra or {})["lockgate"]["sources"] == []
    assert "x-lockgate-model" not in raw.headers
    assert httpx.get(f"{upstream}/_mock/stats").json()["requests"].get("gpt-rag", 0) == before


def test_request_extension_names_a_collection(client: openai.OpenAI, indexed: None) -> None:
    completion = client.chat.completions.create(
        model="plain",
        messages=[{"role": "user", "content": "When are refunds issued?"}],
        extra_body={"lockgate": {"collection": "help"}},
    )
    assert (completion.model_extra or {})["lockgate"]["sources"]


def test_tenants_never_retrieve_each_others_documents(gw: RunningGateway, indexed: None) -> None:
    other = openai.OpenAI(base_url=gw.v1, api_key=OTHER_KEY, max_retries=0)
    completion = other.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "How many days do I have to return an item?"}],
    )
    assert (completion.model_extra or {})["lockgate"]["sources"] == []
    listed = httpx.get(f"{gw.v1}/collections", headers={"authorization": f"Bearer {OTHER_KEY}"})
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_changed_document_invalidates_cached_answers(
    gw: RunningGateway, client: openai.OpenAI, indexed: None
) -> None:
    question = [{"role": "user", "content": "How much does express shipping cost?"}]
    client.chat.completions.create(model="support", messages=question)  # type: ignore[arg-type]
    cached = client.chat.completions.with_raw_response.create(model="support", messages=question)  # type: ignore[arg-type]
    assert cached.headers["x-lockgate-cache"] == "exact"
    changed = upload(gw, "help", "shipping.md", SHIPPING.replace(b"15 euros", b"18 euros"))
    assert changed.json()["outcome"] == "replaced"
    fresh = client.chat.completions.with_raw_response.create(model="support", messages=question)  # type: ignore[arg-type]
    assert fresh.headers["x-lockgate-cache"] == "miss"


def test_manage_collections_and_documents(gw: RunningGateway) -> None:
    auth = {"authorization": f"Bearer {gw.api_key}"}
    assert (
        upload(gw, "scratch", "note.txt", b"A note about gift cards and their expiry.").status_code
        == 201
    )
    assert (
        upload(gw, "scratch", "note.txt", b"A note about gift cards and their expiry.").json()[
            "outcome"
        ]
        == "unchanged"
    )
    docs = httpx.get(f"{gw.v1}/collections/scratch/documents", headers=auth).json()["data"]
    assert [d["title"] for d in docs] and docs[0]["chunk_count"] >= 1
    names = [
        c["collection"] for c in httpx.get(f"{gw.v1}/collections", headers=auth).json()["data"]
    ]
    assert "scratch" in names
    deleted = httpx.delete(
        f"{gw.v1}/collections/scratch/documents/{docs[0]['doc_id']}", headers=auth
    )
    assert deleted.status_code == 200
    assert httpx.get(f"{gw.v1}/collections/scratch/documents", headers=auth).json()["data"] == []


def test_bad_uploads_get_clear_errors(gw: RunningGateway) -> None:
    corrupt = upload(gw, "scratch", "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"] == "invalid_document"
    unsupported = upload(gw, "scratch", "image.png", b"\x89PNG\r\n")
    assert unsupported.status_code == 400
    bad_name = upload(gw, "../other", "x.txt", b"hello")
    assert bad_name.status_code in (400, 404)
