"""An `AsyncOpenSearch` client from settings: SigV4 for Amazon OpenSearch (managed "es" or
Serverless "aoss"), basic auth, or none for a local URL.

The client carries what kind of cluster it talks to (`Flavor`), because the indexes must write
differently to each: a managed domain takes replica settings, `refresh` and our own document
ids; a Serverless collection manages shards and replicas itself, and its vector collections
take neither `refresh` nor a caller-chosen `_id` on writes (AWS's "Supported operations" for
Serverless; checked by reading, emulated by `tests/support/opensearch_stub.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from opensearchpy import AsyncHttpConnection, AsyncOpenSearch, AWSV4SignerAsyncAuth

Auth = Literal["none", "basic", "sigv4"]
Service = Literal["es", "aoss"]
DEFAULT_REPLICAS = "0-1"
"""Auto-expanding replicas: none on a one-node domain (green, not yellow), one where a second
node can hold it."""


@dataclass(frozen=True)
class Flavor:
    serverless: bool = False
    replicas: str = DEFAULT_REPLICAS
    """A count (`"0"`, `"1"`) or an auto-expand range (`"0-1"`, `"0-all"`); unused on
    Serverless."""

    def replica_settings(self) -> dict[str, object]:
        """The index settings for replicas; none on Serverless, which manages them."""
        if self.serverless:
            return {}
        if self.replicas.isdigit():
            return {"number_of_replicas": int(self.replicas)}
        low, sep, high = self.replicas.partition("-")
        if not (sep and low.isdigit() and (high.isdigit() or high == "all")):
            raise ValueError(
                f"OpenSearch replicas must be a count or a range like 0-1, not {self.replicas!r}"
            )
        return {"auto_expand_replicas": self.replicas}


class Connected(AsyncOpenSearch):
    """The client, with the flavor of the cluster it was connected to."""

    flavor: Flavor = Flavor()


def flavor_of(client: AsyncOpenSearch) -> Flavor:
    return client.flavor if isinstance(client, Connected) else Flavor()


@dataclass(frozen=True)
class OpenSearchConfig:
    url: str
    auth: Auth = "none"
    username: str | None = None
    password: str | None = None
    region: str | None = None
    service: Service = "es"
    replicas: str = DEFAULT_REPLICAS
    timeout: float = 10.0
    verify_certs: bool = True

    def __repr__(self) -> str:
        # The password never reaches a log line through this object.
        return (
            f"OpenSearchConfig(url={self.url!r}, auth={self.auth!r}, service={self.service!r}, "
            f"region={self.region!r})"
        )


def connect(config: OpenSearchConfig) -> Connected:
    """The client; it opens connections lazily, so this does no I/O."""
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("OpenSearch URL must look like https://host[:port]")
    http_auth: object = None
    if config.auth == "basic":
        if not config.username or config.password is None:
            raise ValueError("basic auth to OpenSearch needs a username and a password")
        http_auth = (config.username, config.password)
    elif config.auth == "sigv4":
        import boto3

        session = boto3.Session()
        credentials = session.get_credentials()
        region = config.region or session.region_name
        if credentials is None or not region:
            raise ValueError("SigV4 to OpenSearch needs AWS credentials and a region")
        http_auth = AWSV4SignerAsyncAuth(credentials, region, config.service)
    elif config.auth != "none":
        raise ValueError(f"unknown OpenSearch auth {config.auth!r}")
    use_ssl = parts.scheme == "https"
    flavor = Flavor(serverless=config.service == "aoss", replicas=config.replicas)
    flavor.replica_settings()  # a malformed value fails here, at start, not at index creation
    client = Connected(
        hosts=[{"host": parts.hostname, "port": parts.port or (443 if use_ssl else 80)}],
        http_auth=http_auth,
        use_ssl=use_ssl,
        verify_certs=config.verify_certs if use_ssl else False,
        ssl_show_warn=False,
        connection_class=AsyncHttpConnection,
        timeout=config.timeout,
        http_compress=False,
    )
    client.flavor = flavor
    return client
