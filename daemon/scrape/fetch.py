"""Fetching a target's payload: auth, TLS, content negotiation, timeout and size limit."""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Protocol

import httpx

from daemon import __version__
from daemon.config import ScrapeConfig, TLSConfig
from daemon.scrape.target import Target

MEDIA_TYPES = {
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "PrometheusText1.0.0": "text/plain;version=1.0.0",
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
}


def accept_header(protocols: tuple[str, ...]) -> str:
    """The Accept header for a job's scrape_protocols: each format weighted below the one before it."""
    weight = len(protocols) + 1
    parts = []
    for protocol in protocols:
        parts.append(f"{MEDIA_TYPES[protocol]};q=0.{weight}")
        weight -= 1
    parts.append(f"*/*;q=0.{weight}")
    return ",".join(parts)


class FetchError(Exception):
    """The target did not hand over a usable payload; the message says why."""


class Fetcher(Protocol):
    """Gets one payload from a target.

    ``fetch`` returns the (decompressed) body and its Content-Type, or raises FetchError, within
    the target's scrape timeout.
    """

    async def fetch(self, target: Target) -> tuple[bytes, str | None]: ...


class RefusingFetcher:
    """Fails every fetch with one reason, without contacting the target (e.g. target_limit exceeded)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def fetch(self, target: Target) -> tuple[bytes, str | None]:
        raise FetchError(self.reason)


class HTTPFetcher:
    """Fetches over a shared httpx client with one job's headers and limits."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        body_size_limit: int = 0,
        *,
        follow_redirects: bool = True,
        server_name: str | None = None,
    ) -> None:
        self._client = client
        self._headers = headers
        self._limit = body_size_limit
        self._follow_redirects = follow_redirects
        self._extensions = {"sni_hostname": server_name} if server_name else None

    async def fetch(self, target: Target) -> tuple[bytes, str | None]:
        headers = {**self._headers, "X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout:g}"}
        try:
            async with asyncio.timeout(target.timeout):
                async with self._client.stream(
                    "GET",
                    target.url,
                    headers=headers,
                    follow_redirects=self._follow_redirects,
                    extensions=self._extensions,
                ) as response:
                    if response.status_code != 200:
                        raise FetchError(f"server returned HTTP status {response.status_code} {response.reason_phrase}")
                    body = await self._read(response)
                    return body, response.headers.get("content-type")
        except TimeoutError:
            raise FetchError(f"scrape timed out after {target.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc)) from None

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self._limit
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if limit and size > limit:
                raise FetchError(f"body size limit exceeded: more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


class Clients:
    """The scrape HTTP clients: one shared by every job with default TLS, one per custom TLS config."""

    def __init__(self) -> None:
        self._clients: dict[TLSConfig | None, httpx.AsyncClient] = {}

    def fetcher_for(self, job: ScrapeConfig) -> HTTPFetcher:
        """A fetcher with the job's credentials, TLS settings and body size limit."""
        return HTTPFetcher(
            self._client(job.tls_config),
            _headers(job),
            job.body_size_limit,
            follow_redirects=job.follow_redirects,
            server_name=job.tls_config.server_name if job.tls_config else None,
        )

    def _client(self, tls: TLSConfig | None) -> httpx.AsyncClient:
        client = self._clients.get(tls)
        if client is None:
            client = httpx.AsyncClient(
                verify=_ssl_context(tls),
                # A hanging target holds its connection until its own timeout; it must never
                # wait for, or make others wait for, a slot in a pool.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=1000),
                timeout=None,
            )
            self._clients[tls] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _headers(job: ScrapeConfig) -> dict[str, str]:
    headers = {
        "Accept": accept_header(job.scrape_protocols),
        "Accept-Encoding": "gzip",
        "User-Agent": f"alertd/{__version__}",
    }
    if job.basic_auth is not None:
        user = job.basic_auth.username
        password = job.basic_auth.password.reveal() if job.basic_auth.password is not None else ""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif job.authorization is not None and job.authorization.credentials is not None:
        headers["Authorization"] = f"{job.authorization.type} {job.authorization.credentials.reveal()}"
    elif job.bearer_token is not None:
        headers["Authorization"] = f"Bearer {job.bearer_token.reveal()}"
    return headers


def _ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | bool:
    if tls is None:
        return True
    context = ssl.create_default_context(cafile=tls.ca_file) if tls.ca_file else ssl.create_default_context()
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}" if str(exc) else "connection refused"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the response body: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}"
    return f"{type(exc).__name__}: {exc}"
