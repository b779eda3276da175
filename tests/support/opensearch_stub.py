"""An OpenSearch-compatible stub on 127.0.0.1 for the real `opensearch-py` client.

It checks what a real cluster would check for the calls Lockgate makes (index creation with a
k-NN mapping, `knn` queries with a `filter`, `_bulk` NDJSON, `_delete_by_query`) and answers
malformed requests with OpenSearch-style 400 errors; well-formed ones are executed with exact
numpy search and the k-NN plugin's documented score formulas, so tests see real behaviour, not
canned answers. Every request is recorded (`stub.requests`) for shape assertions.

With `authorize` set (a function of method and path, e.g. a role's `es:ESHttp*` grants), a
request it refuses is recorded in `stub.denied` and answered 403 as OpenSearch Service answers
an unauthorized role (or let through when `enforce` is False, to list every gap in one run).

Emulates an OpenSearch 2.19 cluster (faiss HNSW supports l2, innerproduct, cosinesimil); pass
`version="2.11.0"` to get the older rule that faiss rejects cosinesimil. `serverless=True`
emulates an OpenSearch Serverless vector collection as AWS documents it: no `refresh`
parameter, no caller-chosen `_id` on index/create, no shard or replica settings, no
`_delete_by_query`; documents get generated ids.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from tests.support.servers import free_port

SPACES = {"l2", "innerproduct", "cosinesimil", "l1", "linf", "hamming"}
FAISS_SPACES_OLD = {"l2", "innerproduct", "hamming"}
FAISS_SPACES_219 = FAISS_SPACES_OLD | {"cosinesimil"}
REFRESH_VALUES = {"", "true", "false", "wait_for"}
BODY = web.RequestKey("body", object)


class BadRequest(Exception):
    def __init__(self, kind: str, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.status = kind, reason, status


@dataclass
class StubIndex:
    settings: dict[str, Any]
    mappings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def knn_fields(self) -> dict[str, dict[str, Any]]:
        return {
            name: spec
            for name, spec in self.mappings.get("properties", {}).items()
            if spec.get("type") == "knn_vector"
        }


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    body: Any


class OpenSearchStub:
    def __init__(self, version: str = "2.19.0", *, serverless: bool = False) -> None:
        self.version = version
        self.serverless = serverless
        self.indices: dict[str, StubIndex] = {}
        self.requests: list[Recorded] = []
        self.authorize: Callable[[str, str], bool] | None = None
        self.enforce = True
        self.denied: list[Recorded] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._info)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_put("/_bulk", self._bulk)
        app.router.add_route("HEAD", "/{index}", self._exists)
        app.router.add_put("/{index}", self._create)
        app.router.add_delete("/{index}", self._delete_index)
        app.router.add_get("/{index}/_mapping", self._mapping)
        app.router.add_post("/{index}/_bulk", self._bulk)
        app.router.add_post("/{index}/_search", self._search)
        app.router.add_get("/{index}/_search", self._search)
        app.router.add_post("/{index}/_delete_by_query", self._delete_by_query)
        app.router.add_post("/{index}/_refresh", self._refresh)
        return app

    def recorded(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    # -- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body: Any = raw.decode() if raw else None
        if body and not request.path.endswith("_bulk"):
            try:
                body = json.loads(body)
            except ValueError:
                return _error(BadRequest("parse_exception", "request body is not valid JSON"))
        recorded = Recorded(request.method, request.path, dict(request.query), body)
        self.requests.append(recorded)
        if self.authorize is not None and not self.authorize(request.method, request.path):
            self.denied.append(recorded)
            if self.enforce:
                return web.json_response(
                    {"message": f"no permissions for [{request.method} {request.path}]"},
                    status=403,
                )
        request[BODY] = body
        try:
            refresh = request.query.get("refresh")
            if refresh is not None and refresh not in REFRESH_VALUES:
                raise BadRequest("illegal_argument_exception", f"invalid refresh {refresh!r}")
            if refresh is not None and self.serverless:
                raise BadRequest("illegal_argument_exception", "refresh is not supported")
            response: web.StreamResponse = await handler(request)
            return response
        except BadRequest as exc:
            return _error(exc)

    def _index(self, request: web.Request) -> StubIndex:
        name = request.match_info["index"]
        if name not in self.indices:
            raise BadRequest("index_not_found_exception", f"no such index [{name}]", 404)
        return self.indices[name]

    # -- endpoints --------------------------------------------------------------------------

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"name": "stub", "version": {"distribution": "opensearch", "number": self.version}}
        )

    async def _exists(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if request.match_info["index"] in self.indices else 404)

    async def _create(self, request: web.Request) -> web.Response:
        name = request.match_info["index"]
        if name in self.indices:
            raise BadRequest("resource_already_exists_exception", f"index [{name}] already exists")
        body = request[BODY] or {}
        settings = body.get("settings", {})
        mappings = body.get("mappings", {})
        knn_enabled = settings.get("index", {}).get("knn", settings.get("index.knn"))
        managed = {"number_of_shards", "number_of_replicas", "auto_expand_replicas"}
        if self.serverless and managed & set(settings.get("index", {})):
            raise BadRequest("illegal_argument_exception", "shards and replicas are managed")
        index = StubIndex(settings, mappings)
        fields = index.knn_fields()
        if fields and knn_enabled is not True:
            raise BadRequest(
                "illegal_argument_exception",
                "knn_vector fields need the index setting index.knn: true",
            )
        for field_name, spec in fields.items():
            self._check_knn_field(field_name, spec)
        for field_name, spec in mappings.get("properties", {}).items():
            if spec.get("type") not in {"knn_vector", "keyword", "text", "object", "long", "float"}:
                raise BadRequest(
                    "mapper_parsing_exception",
                    f"No handler for type [{spec.get('type')}] declared on field [{field_name}]",
                )
        self.indices[name] = index
        return web.json_response({"acknowledged": True, "index": name})

    def _check_knn_field(self, name: str, spec: dict[str, Any]) -> None:
        dimension = spec.get("dimension")
        if not isinstance(dimension, int) or not 1 <= dimension <= 16000:
            raise BadRequest("mapper_parsing_exception", f"[dimension] invalid for field [{name}]")
        method = spec.get("method", {})
        if method.get("name") not in {"hnsw", "ivf"}:
            raise BadRequest("mapper_parsing_exception", f"invalid method for field [{name}]")
        engine = method.get("engine", "faiss")
        space = method.get("space_type", spec.get("space_type", "l2"))
        if space not in SPACES:
            raise BadRequest("mapper_parsing_exception", f"Unable to parse space type [{space}]")
        allowed = FAISS_SPACES_219 if _at_least(self.version, (2, 19)) else FAISS_SPACES_OLD
        if engine == "faiss" and space not in allowed:
            raise BadRequest(
                "mapper_parsing_exception",
                f'Validation Failed: 1: "hnsw" with "faiss" configuration does not support '
                f'space type: "{space}".;',
            )
        unknown = set(method.get("parameters", {})) - {
            "m",
            "ef_construction",
            "ef_search",
            "encoder",
        }
        if unknown:
            raise BadRequest("mapper_parsing_exception", f"unknown method parameters {unknown}")

    async def _delete_index(self, request: web.Request) -> web.Response:
        self._index(request)
        del self.indices[request.match_info["index"]]
        return web.json_response({"acknowledged": True})

    async def _mapping(self, request: web.Request) -> web.Response:
        index = self._index(request)
        return web.json_response({request.match_info["index"]: {"mappings": index.mappings}})

    async def _refresh(self, request: web.Request) -> web.Response:
        self._index(request)
        return web.json_response({"_shards": {"total": 1, "successful": 1, "failed": 0}})

    async def _bulk(self, request: web.Request) -> web.Response:
        text = request[BODY] or ""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith(("application/json", "application/x-ndjson")):
            raise BadRequest("illegal_argument_exception", f"bad content type {content_type}")
        if not text.endswith("\n"):
            raise BadRequest(
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]",
            )
        lines = [line for line in text.split("\n") if line.strip()]
        default_index = request.match_info.get("index")
        items, errors, i = [], False, 0
        while i < len(lines):
            try:
                action = json.loads(lines[i])
            except ValueError as exc:
                raise BadRequest("json_parse_exception", f"line {i + 1}: {exc}") from exc
            if not isinstance(action, dict) or len(action) != 1:
                raise BadRequest(
                    "illegal_argument_exception", f"Malformed action/metadata line [{i + 1}]"
                )
            ((op, meta),) = action.items()
            if op not in {"index", "create", "delete", "update"}:
                raise BadRequest(
                    "illegal_argument_exception",
                    f"Action/metadata line [{i + 1}] contains an unknown parameter [{op}]",
                )
            name = meta.get("_index", default_index)
            doc_id = meta.get("_id")
            if not name or name not in self.indices:
                raise BadRequest("index_not_found_exception", f"no such index [{name}]", 404)
            index = self.indices[name]
            if op == "delete":
                i += 1
                if doc_id in index.docs:
                    del index.docs[doc_id]
                    items.append(
                        {op: {"_index": name, "_id": doc_id, "status": 200, "result": "deleted"}}
                    )
                else:
                    errors = True
                    items.append(
                        {op: {"_index": name, "_id": doc_id, "status": 404, "result": "not_found"}}
                    )
                continue
            if i + 1 >= len(lines):
                raise BadRequest("illegal_argument_exception", f"[{op}] is missing its source line")
            source = json.loads(lines[i + 1])
            i += 2
            if op == "update":
                raise BadRequest("illegal_argument_exception", "update is not used by Lockgate")
            problem = _check_doc(index, source)
            if self.serverless:
                if doc_id is not None:
                    problem = "Document ID is not supported in create/index operation request"
                doc_id = uuid.uuid4().hex
            if problem is not None:
                errors = True
                items.append(
                    {
                        op: {
                            "_index": name,
                            "_id": doc_id,
                            "status": 400,
                            "error": {"type": "mapper_parsing_exception", "reason": problem},
                        }
                    }
                )
                continue
            created = doc_id not in index.docs
            index.docs[doc_id] = source
            items.append(
                {
                    op: {
                        "_index": name,
                        "_id": doc_id,
                        "status": 201 if created else 200,
                        "result": "created" if created else "updated",
                    }
                }
            )
        return web.json_response({"took": 1, "errors": errors, "items": items})

    async def _search(self, request: web.Request) -> web.Response:
        index = self._index(request)
        body = request[BODY] or {}
        query = body.get("query", {"match_all": {}})
        size = body.get("size", 10)
        if "knn" not in query:
            docs = [
                (doc_id, doc, 1.0) for doc_id, doc in index.docs.items() if _matches(query, doc)
            ]
        else:
            docs = self._knn(index, query)
        sort = [next(iter(clause)) for clause in body.get("sort", [])]
        if sort:
            docs.sort(key=lambda d: [d[1].get(name, "") for name in sort])
            after = body.get("search_after")
            if after is not None:
                docs = [d for d in docs if [d[1].get(name, "") for name in sort] > after]
        includes = body.get("_source", True)
        hits = []
        for doc_id, doc, score in docs[:size]:
            hit: dict[str, Any] = {"_index": request.match_info["index"], "_id": doc_id}
            hit["_score"] = score
            if includes is not False:
                hit["_source"] = (
                    doc if includes is True else {k: v for k, v in doc.items() if k in includes}
                )
            if sort:
                hit["sort"] = [doc.get(name, "") for name in sort]
            hits.append(hit)
        return web.json_response(
            {
                "took": 1,
                "timed_out": False,
                "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits},
            }
        )

    def _knn(
        self, index: StubIndex, query: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any], float]]:
        if len(query) != 1:
            raise BadRequest("parsing_exception", "[knn] must be the only clause of this query")
        clause = query["knn"]
        if not isinstance(clause, dict) or len(clause) != 1:
            raise BadRequest("parsing_exception", "[knn] query must name exactly one field")
        ((field_name, spec),) = clause.items()
        fields = index.knn_fields()
        if field_name not in fields:
            raise BadRequest(
                "illegal_argument_exception", f"Field '{field_name}' is not knn_vector type."
            )
        unknown = set(spec) - {"vector", "k", "filter", "method_parameters", "rescore"}
        if unknown:
            raise BadRequest("parsing_exception", f"[knn] unknown token {sorted(unknown)}")
        vector, k = spec.get("vector"), spec.get("k")
        dimension = fields[field_name]["dimension"]
        if not isinstance(vector, list) or len(vector) != dimension:
            raise BadRequest(
                "illegal_argument_exception",
                f"Query vector has invalid dimension: {len(vector or [])}. "
                f"Dimension should be: {dimension}",
            )
        if not isinstance(k, int) or not 1 <= k <= 10000:
            raise BadRequest("illegal_argument_exception", "[knn] requires k to be in [1, 10000]")
        filter_query = spec.get("filter", {"match_all": {}})
        _matches(filter_query, {})  # parse errors surface even when the index is empty
        candidates = [
            (doc_id, doc) for doc_id, doc in index.docs.items() if _matches(filter_query, doc)
        ]
        if not candidates:
            return []
        space = fields[field_name]["method"].get("space_type", "l2")
        q = np.asarray(vector, dtype=np.float32)
        matrix = np.asarray([doc[field_name] for _, doc in candidates], dtype=np.float32)
        scores = _scores(space, matrix, q)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(candidates[i][0], candidates[i][1], float(scores[i])) for i in order]

    async def _delete_by_query(self, request: web.Request) -> web.Response:
        if self.serverless:
            raise BadRequest("not_found", "no handler for _delete_by_query", 404)
        index = self._index(request)
        body = request[BODY] or {}
        if set(body) != {"query"}:
            raise BadRequest("parsing_exception", "_delete_by_query needs exactly a [query]")
        if "knn" in body["query"]:
            raise BadRequest("illegal_argument_exception", "knn is not allowed in delete_by_query")
        _matches(body["query"], {})
        doomed = [doc_id for doc_id, doc in index.docs.items() if _matches(body["query"], doc)]
        for doc_id in doomed:
            del index.docs[doc_id]
        return web.json_response(
            {
                "took": 1,
                "timed_out": False,
                "total": len(doomed),
                "deleted": len(doomed),
                "failures": [],
            }
        )


def _scores(
    space: str, matrix: np.ndarray[Any, Any], q: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The k-NN plugin's score formulas for approximate search (OpenSearch 2.x docs)."""
    if space == "innerproduct":
        ip = matrix @ q
        return np.where(ip >= 0, 1.0 + ip, 1.0 / (1.0 - np.minimum(ip, 0.0)))
    if space == "cosinesimil":
        cos = (matrix @ q) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))
        return (2.0 - (1.0 - cos)) / 2.0
    if space == "l2":
        return 1.0 / (1.0 + ((matrix - q) ** 2).sum(axis=1))
    raise BadRequest("illegal_argument_exception", f"space {space} is not emulated")


def _check_doc(index: StubIndex, source: Any) -> str | None:
    if not isinstance(source, dict):
        return "document source must be an object"
    properties = index.mappings.get("properties", {})
    for name, spec in index.knn_fields().items():
        if name not in source:
            continue
        value = source[name]
        if not isinstance(value, list) or len(value) != spec["dimension"]:
            return f"Vector dimension mismatch. Expected: {spec['dimension']}"
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in value):
            return "KNN vector values cannot be NaN or Infinity"
    for name, spec in properties.items():
        if spec.get("type") == "keyword" and name in source and not isinstance(source[name], str):
            return f"failed to parse field [{name}] of type [keyword]"
    return None


def _matches(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    """The query DSL subset filters use: match_all, term, terms, prefix, bool."""
    if not isinstance(query, dict) or len(query) != 1:
        raise BadRequest("parsing_exception", "a query must have exactly one clause")
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return True
    if kind in {"term", "prefix"}:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise BadRequest("parsing_exception", f"[{kind}] query malformed, no field")
        ((name, value),) = spec.items()
        if isinstance(value, dict):
            value = value.get("value")
        if not isinstance(value, str | int | float | bool):
            raise BadRequest("parsing_exception", f"[{kind}] query needs a value")
        actual = doc.get(name)
        return (
            actual == value
            if kind == "term"
            else isinstance(actual, str) and actual.startswith(str(value))
        )
    if kind == "terms":
        ((name, values),) = spec.items()
        return doc.get(name) in values
    if kind == "bool":
        unknown = set(spec) - {"must", "filter", "should", "must_not", "minimum_should_match"}
        if unknown:
            raise BadRequest("parsing_exception", f"[bool] unknown {sorted(unknown)}")

        def clauses(key: str) -> list[dict[str, Any]]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        return (
            all(_matches(c, doc) for c in clauses("must") + clauses("filter"))
            and not any(_matches(c, doc) for c in clauses("must_not"))
            and (not clauses("should") or any(_matches(c, doc) for c in clauses("should")))
        )
    raise BadRequest("parsing_exception", f"unknown query [{kind}]")


def _error(exc: BadRequest) -> web.Response:
    cause = {"type": exc.kind, "reason": exc.reason}
    return web.json_response(
        {"error": {"root_cause": [cause], **cause}, "status": exc.status}, status=exc.status
    )


def _at_least(version: str, wanted: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= wanted


@contextmanager
def opensearch_stub(
    version: str = "2.19.0", *, serverless: bool = False
) -> Iterator[tuple[str, OpenSearchStub]]:
    """Serves the stub on a loopback port; yields (base URL, stub)."""
    stub = OpenSearchStub(version, serverless=serverless)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(stub.app(), access_log=None)
    ready = threading.Event()

    def serve() -> None:
        # Set up on the server's own thread: the caller may itself be inside a running loop.
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("OpenSearch stub did not start")
    try:
        yield f"http://127.0.0.1:{port}", stub
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
