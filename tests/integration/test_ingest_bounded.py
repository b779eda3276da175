"""One upload must not freeze every tenant (issue 9.1): while the worst documents are being
uploaded and parsed, `/health` answers within 100 ms, and each is refused with a 413 naming the
limit it broke.

Real gateway (uvicorn on loopback), real upload route, real parsers in the worker process; the
documents are the attack's own shapes, generated here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.hostile_documents import (
    empty_paragraphs_docx,
    many_pages_pdf,
    wall_of_text_docx,
)
from tests.support.servers import RunningGateway, gateway, mock_policy


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/gpt-fast"]}})
    # The paragraph limit is lifted so that the bomb really is parsed, until the worker's
    # memory cap stops it.
    policy["ingestion"] = {"max_paragraphs": 10**8, "parse_memory_mb": 512}
    with gateway(policy, tmp_path_factory.mktemp("bounded")) as running:
        yield running


@pytest.mark.slow
def test_health_answers_while_the_worst_files_are_parsed(gw: RunningGateway) -> None:
    files = {
        "bomb.docx": empty_paragraphs_docx(),
        "long.pdf": many_pages_pdf(),
        "wall.docx": wall_of_text_docx(),
    }
    answers: dict[str, httpx.Response] = {}

    def upload(name: str, content: bytes) -> None:
        answers[name] = httpx.post(
            f"{gw.v1}/collections/docs/documents",
            params={"filename": name},
            content=content,
            headers={"authorization": f"Bearer {gw.api_key}"},
            timeout=120,
        )

    uploads = [threading.Thread(target=upload, args=item) for item in files.items()]
    for thread in uploads:
        thread.start()
    latencies: list[float] = []
    with httpx.Client(base_url=gw.base_url) as client:
        while any(thread.is_alive() for thread in uploads):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    for thread in uploads:
        thread.join()
    assert len(latencies) >= 10
    # One probe may wait longer (0.15-0.18 s seen on 2 cores, at the moments the worker
    # process is killed and started again); every other one is served at once.
    slowest = sorted(latencies)[-5:]
    assert slowest[-2] < 0.1 and slowest[-1] < 0.5, slowest
    limits = {}
    for name, response in answers.items():
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "document_too_large" and name in error["message"]
        limits[name] = error["param"]
    assert limits == {
        "bomb.docx": "parse_memory_mb",
        "long.pdf": "max_pages",
        "wall.docx": "max_chunks",
    }
