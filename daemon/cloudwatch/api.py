"""The two CloudWatch calls alertd makes, behind a small interface, and the aiobotocore implementation.

``CloudWatchAPI`` is the whole contract the source depends on; ``daemon.cloudwatch.fake`` holds an
in-memory implementation and an HTTP server that speaks CloudWatch's protocol, for tests.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Protocol

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioAssumeRoleCredentialFetcher, AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession, get_session
from botocore.credentials import CredentialProvider
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError

THROTTLED = "throttled"
SERVER = "server"
NETWORK = "network"
DENIED = "denied"
CREDENTIALS = "credentials"
INVALID = "invalid"

_RETRYABLE = frozenset({THROTTLED, SERVER, NETWORK})
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "LimitExceeded",
        "LimitExceededException",
        "SlowDown",
    }
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "NotAuthorized",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
ROLE_SESSION_NAME = "alertd"


class CloudWatchError(Exception):
    """A call that CloudWatch (or the way to it) refused.

    ``kind`` is one of ``throttled``, ``server`` (5xx), ``network`` (these three are worth
    retrying), ``denied`` (AccessDenied and other refused credentials), ``credentials`` (none
    found) or ``invalid`` (a request CloudWatch rejects as malformed); ``code`` is AWS' error code.
    """

    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.kind = kind
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE


class CloudWatchAPI(Protocol):
    """GetMetricData and ListMetrics in one region at a time.

    ``params`` are the operation's request members as AWS names them (``MetricDataQueries``,
    ``StartTime``, ``NextToken``...); the answer is the response as a dict, with timestamps as
    aware ``datetime`` objects. Failures raise ``CloudWatchError``. ``close`` releases every
    connection; the object is not used afterwards.
    """

    async def get_metric_data(self, region: str, **params: Any) -> dict[str, Any]: ...

    async def list_metrics(self, region: str, **params: Any) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def classify(exc: BaseException) -> CloudWatchError:
    """The ``CloudWatchError`` that a botocore or aiohttp exception means."""
    if isinstance(exc, CloudWatchError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _THROTTLING_CODES or status == 429:
            return CloudWatchError(THROTTLED, code, message)
        if code in _DENIED_CODES or status == 403:
            return CloudWatchError(DENIED, code, message)
        if status >= 500 or code in ("InternalServiceError", "InternalFailure", "ServiceUnavailable"):
            return CloudWatchError(SERVER, code, message)
        return CloudWatchError(INVALID, code, message)
    if isinstance(exc, NoCredentialsError):
        return CloudWatchError(
            CREDENTIALS, "NoCredentials", "no AWS credentials found (environment, profile, ECS task role, instance metadata)"
        )
    if isinstance(exc, (HTTPClientError, aiohttp.ClientError, ConnectionError)):
        return CloudWatchError(NETWORK, type(exc).__name__, str(exc))
    if isinstance(exc, BotoCoreError) and "credential" in type(exc).__name__.lower():
        return CloudWatchError(CREDENTIALS, type(exc).__name__, str(exc))
    return CloudWatchError(INVALID, type(exc).__name__, str(exc))


class _AssumeRoleProvider(CredentialProvider):  # type: ignore[misc]
    """Credentials of ``role_arn``, assumed with the default chain's credentials and renewed before they expire."""

    METHOD = "alertd-assume-role"

    def __init__(self, base: AioSession, role_arn: str, region: str, sts_endpoint_url: str | None) -> None:
        self._base = base
        self._role_arn = role_arn
        self._region = region
        self._sts_endpoint_url = sts_endpoint_url

    async def load(self) -> AioDeferredRefreshableCredentials:
        source = await self._base.get_credentials()
        if source is None:
            raise NoCredentialsError()
        fetcher = AioAssumeRoleCredentialFetcher(
            client_creator=functools.partial(
                self._base.create_client, region_name=self._region, endpoint_url=self._sts_endpoint_url
            ),
            source_credentials=source,
            role_arn=self._role_arn,
            extra_args={"RoleSessionName": ROLE_SESSION_NAME},
        )
        return AioDeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method=self.METHOD)


class AioCloudWatch:
    """CloudWatch through aiobotocore: one long-lived client per region, created on first use.

    Credentials come from botocore's default chain (environment, shared profile, ECS task role,
    instance metadata); with ``role_arn`` those credentials assume the role through STS and the
    role's credentials are renewed before they expire. botocore's own retries are off: the
    source retries under its poll deadline instead.
    """

    def __init__(
        self,
        region: str,
        *,
        role_arn: str | None = None,
        endpoint_url: str | None = None,
        sts_endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
    ) -> None:
        self._session = get_session()
        if role_arn is not None:
            resolver = self._session.get_component("credential_provider")
            provider = _AssumeRoleProvider(get_session(), role_arn, region, sts_endpoint_url)
            resolver.insert_before(resolver.providers[0].METHOD, provider)
        self._endpoint_url = endpoint_url
        self._config = AioConfig(
            retries={"total_max_attempts": 1},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent_extra="alertd",
        )
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def _client(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            creating = self._session.create_client(
                "cloudwatch", region_name=region, endpoint_url=self._endpoint_url, config=self._config
            )
            client = self._clients[region] = await self._stack.enter_async_context(creating)
        return client

    async def get_metric_data(self, region: str, **params: Any) -> dict[str, Any]:
        return await self._call(region, "get_metric_data", params)

    async def list_metrics(self, region: str, **params: Any) -> dict[str, Any]:
        return await self._call(region, "list_metrics", params)

    async def _call(self, region: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            client = await self._client(region)
            response: dict[str, Any] = await getattr(client, operation)(**params)
            return response
        except (BotoCoreError, ClientError, aiohttp.ClientError, ConnectionError) as exc:
            raise classify(exc) from exc

    async def close(self) -> None:
        self._clients.clear()
        with contextlib.suppress(Exception):
            await self._stack.aclose()
