"""An `AsyncOpenSearch` client from settings: SigV4 for Amazon OpenSearch (managed "es" or
Serverless "aoss"), basic auth, or none for a local URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from opensearchpy import AsyncHttpConnection, AsyncOpenSearch, AWSV4SignerAsyncAuth

Auth = Literal["none", "basic", "sigv4"]


@dataclass(frozen=True)
class OpenSearchConfig:
    url: str
    auth: Auth = "none"
    username: str | None = None
    password: str | None = None
    region: str | None = None
    service: Literal["es", "aoss"] = "es"
    timeout: float = 10.0
    verify_certs: bool = True

    def __repr__(self) -> str:
        # The password never reaches a log line through this object.
        return (
            f"OpenSearchConfig(url={self.url!r}, auth={self.auth!r}, service={self.service!r}, "
            f"region={self.region!r})"
        )


def connect(config: OpenSearchConfig) -> AsyncOpenSearch:
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
    return AsyncOpenSearch(
        hosts=[{"host": parts.hostname, "port": parts.port or (443 if use_ssl else 80)}],
        http_auth=http_auth,
        use_ssl=use_ssl,
        verify_certs=config.verify_certs if use_ssl else False,
        ssl_show_warn=False,
        connection_class=AsyncHttpConnection,
        timeout=config.timeout,
        http_compress=False,
    )
