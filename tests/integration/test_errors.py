"""Bad input and bad keys: the right status, the protocol's error envelope, nothing leaked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from lockgate.observability import JsonFormatter

from tests.support.servers import API_KEY, RunningGateway, access_records, gateway, mock_policy

UPSTREAM_SECRET = "sk-upstream-secret-1234"
ADMIN_KEY = "adm-test-key-0123456789"


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {"fast": {"targets": ["mock/gpt-fast"]}, "down": {"targets": ["mock/x+status=500"]}},
        retry={"attempts": 1},
    )
    with gateway(
        policy, tmp_path_factory.mktemp("errors"), max_body_bytes=4096, admin_key=ADMIN_KEY
    ) as running:
        yield running


@pytest.fixture
def http(gw: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.base_url, headers={"authorization": f"Bearer {gw.api_key}"}) as c:
        yield c


def _openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    return dict(error)


CHAT = "/v1/chat/completions"
GOOD = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


def test_malformed_json_is_400(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, content=b'{"model": "fast", '), 400)
    assert "not valid JSON" in str(error["message"])


def test_not_an_object_is_400(http: httpx.Client) -> None:
    _openai_error(http.post(CHAT, content=b"[1, 2]"), 400)


def test_validation_errors_are_400_never_422(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, json={"model": "fast", "messages": []}), 400)
    assert error["param"] == "messages"
    error = _openai_error(http.post(CHAT, json={**GOOD, "temperature": 7}), 400)
    assert error["param"] == "temperature"
    _openai_error(http.post(CHAT, json={"messages": GOOD["messages"]}), 400)


def test_oversize_body_is_413(http: httpx.Client) -> None:
    big = {"model": "fast", "messages": [{"role": "user", "content": "x" * 10_000}]}
    error = _openai_error(http.post(CHAT, json=big), 413)
    assert error["code"] == "request_too_large"


def test_unknown_model_is_404(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, json={**GOOD, "model": "nope"}), 404)
    assert error["code"] == "model_not_found" and "fast" in str(error["message"])


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}])
def test_missing_or_unknown_key_is_401(gw: RunningGateway, headers: dict[str, str]) -> None:
    response = httpx.post(f"{gw.base_url}{CHAT}", json=GOOD, headers=headers)
    error = _openai_error(response, 401)
    assert error["code"] == "invalid_api_key"
    assert "wrong" not in response.text


def test_models_needs_a_key(gw: RunningGateway) -> None:
    _openai_error(httpx.get(f"{gw.base_url}/v1/models"), 401)


def test_unknown_route_is_404_envelope(http: httpx.Client) -> None:
    _openai_error(http.get("/v1/nothing-here"), 404)


def test_upstream_failure_is_502_envelope(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="down", messages=GOOD["messages"])  # type: ignore[arg-type]
    assert caught.value.status_code == 502


def test_anthropic_route_uses_anthropic_envelope(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(
            model="fast", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": caught.value.body["error"]["message"]},  # type: ignore[index]
    }
    response = httpx.post(
        f"{gw.base_url}/v1/messages", content=b"{oops", headers={"x-api-key": gw.api_key}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(
        f"{gw.base_url}/v1/messages",
        json={"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gw.api_key},
    )
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_no_secret_or_prompt_reaches_the_logs(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    prompt = "my private question about zebras"
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    client.chat.completions.create(model="fast", messages=[{"role": "user", "content": prompt}])
    with pytest.raises(openai.APIError):
        client.chat.completions.create(model="down", messages=[{"role": "user", "content": prompt}])
    httpx.post(
        f"{gw.base_url}{CHAT}",
        json=GOOD,
        headers={"authorization": "Bearer sk-leaked-guess-123456"},
    )
    formatter = JsonFormatter()
    written = "\n".join(formatter.format(record) for record in access_records(caplog, 3))
    assert '"request_id"' in written
    for secret in (API_KEY, UPSTREAM_SECRET, "sk-leaked-guess-123456", "zebras"):
        assert secret not in written


ANTHROPIC = "/v1/messages"


def _anthropic_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert response.headers["x-request-id"]
    return dict(body["error"])


def test_a_collection_name_reaching_into_another_namespace_is_400(http: httpx.Client) -> None:
    """`lockgate.collection: "tenant-a/docs"` raised InvalidName through the route: a 500."""
    body = {**GOOD, "lockgate": {"collection": "tenant-a/docs"}}
    error = _openai_error(http.post(CHAT, json=body), 400)
    assert error["code"] == "invalid_name"


@pytest.mark.parametrize(
    "raw",
    [
        b'"logit_bias": {"50256": NaN}',
        b'"foo": NaN',
        b'"foo": {"deep": [1, -Infinity]}',
        b'"temperature": Infinity',
    ],
)
def test_non_finite_numbers_are_400_at_parse_time(http: httpx.Client, raw: bytes) -> None:
    """NaN/Infinity are not JSON; pydantic's parser let them through into cache keys (a 500 from
    `json.dumps`) and into upstream encoders."""
    body = b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}], ' + raw + b"}"
    error = _openai_error(http.post(CHAT, content=body), 400)
    assert "NaN and Infinity" in str(error["message"])


def test_the_words_nan_and_infinity_in_text_are_fine(http: httpx.Client) -> None:
    body = {"model": "fast", "messages": [{"role": "user", "content": "NaN or Infinity?"}]}
    assert http.post(CHAT, json=body).status_code == 200


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "source": "https://example.com/cat.png"},
        {"type": "tool_result", "tool_use_id": "t1", "content": 42},
        {"type": "tool_result", "tool_use_id": "t1", "content": {"text": "x"}},
        {"type": "tool_result", "tool_use_id": "t1", "content": ["a", "b"]},
    ],
)
def test_anthropic_blocks_of_the_wrong_shape_are_400(gw: RunningGateway, block: object) -> None:
    body = {"model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": [block]}]}
    response = httpx.post(f"{gw.base_url}{ANTHROPIC}", json=body, headers={"x-api-key": gw.api_key})
    error = _anthropic_error(response, 400)
    assert error["type"] == "invalid_request_error"


def test_upload_without_filename_is_400_envelope(http: httpx.Client) -> None:
    """FastAPI answered a missing query parameter with 422 `{"detail": ...}`."""
    error = _openai_error(http.post("/v1/collections/docs/documents", content=b"hello"), 400)
    assert error["param"] == "filename"


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("broken.docx", "docx"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<>>\n%%EOF"),
    ],
)
def test_corrupt_documents_are_400_not_retryable(
    http: httpx.Client, filename: str, content: object
) -> None:
    """A corrupt DOCX (lxml XMLSyntaxError) or PDF was a retryable 503 with no Retry-After."""
    if content == "docx":
        content = _docx_with(b"<w:document><w:body><w:p>unclosed")
    response = http.post(
        "/v1/collections/docs/documents", params={"filename": filename}, content=content
    )
    error = _openai_error(response, 400)
    assert error["code"] == "invalid_document"
    assert filename in str(error["message"])


def _docx_with(document_xml: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        archive.writestr("word/document.xml", document_xml)
    return buffer.getvalue()


@pytest.mark.parametrize("path", [CHAT, ANTHROPIC])
@pytest.mark.parametrize("stream", [False, True])
def test_a_bug_is_a_500_envelope_with_request_id_and_no_prompt_in_the_logs(
    gw: RunningGateway,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
    stream: bool,
) -> None:
    """Whatever escapes is the protocol's envelope, never plain text, and the log line says
    where it happened without the exception's message (which here quotes the prompt, as
    pydantic's `input_value` did)."""
    caplog.set_level(logging.INFO)
    gateway_ = gw.app.state.container.gateway

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("input_value='my secret aardvark prompt'")

    monkeypatch.setattr(gateway_.router, "route", broken)
    body = {
        "model": "fast",
        "max_tokens": 5,
        "stream": stream,
        "messages": [{"role": "user", "content": "my secret aardvark prompt"}],
    }
    response = httpx.post(
        f"{gw.base_url}{path}",
        json=body,
        headers={"authorization": f"Bearer {gw.api_key}", "x-request-id": "req-bug-1"},
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    if path == CHAT:
        error = _openai_error(response, 500)
        assert error["code"] == "internal_error"
    else:
        error = _anthropic_error(response, 500)
        assert error["type"] == "api_error"
    assert "req-bug-1" in str(error["message"]) and "aardvark" not in response.text
    written = "\n".join(JsonFormatter().format(record) for record in access_records(caplog))
    assert "req-bug-1" in written and "RuntimeError" in written
    assert "aardvark" not in written


@pytest.mark.parametrize("chunked", [False, True])
def test_admin_bodies_have_the_same_limit(gw: RunningGateway, chunked: bool) -> None:
    """The admin routes read their bodies without a limit (issue 9.8)."""
    body = b'{"id": "big", "name": "' + b"x" * 10_000 + b'"}'
    content = iter([body[:5000], body[5000:]]) if chunked else body
    response = httpx.post(
        f"{gw.base_url}/admin/tenants",
        content=content,
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    )
    error = _openai_error(response, 413)
    assert error["code"] == "request_too_large"
