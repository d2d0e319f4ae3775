"""Fakes of CloudWatch for tests: an in-memory ``CloudWatchAPI`` and an HTTP server in front of it.

``FakeCloudWatch`` answers GetMetricData and ListMetrics from values put into it (any statistic,
percentiles included, since it stores each statistic's value as given), pages its answers to
exercise ``NextToken``, and can be told to fail the next calls. ``FakeCloudWatchServer`` serves the
same fake over HTTP on 127.0.0.1 in CloudWatch's JSON 1.0 protocol, so that the real aiobotocore
client (request signing, error parsing) talks to it; it keeps every request's headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from daemon.cloudwatch.api import CloudWatchError

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass
class Failure:
    """A scripted failed answer: the HTTP status and AWS error code the server (or fake) gives."""

    status: int
    code: str
    message: str = "scripted failure"

    def error(self) -> CloudWatchError:
        if self.status == 429 or "Throttl" in self.code:
            return CloudWatchError("throttled", self.code, self.message)
        if self.status >= 500:
            return CloudWatchError("server", self.code, self.message)
        return CloudWatchError("denied" if self.status == 403 else "invalid", self.code, self.message)


@dataclass
class FakeCloudWatch:
    """In-memory CloudWatch. ``page_size`` caps the datapoints of one GetMetricData page.

    ``partial`` makes every page that has a next one say ``PartialData`` for the queries it cut, as
    CloudWatch does. ``failures`` are given, in order, to the next calls instead of an answer.
    """

    page_size: int = 100_800
    list_page_size: int = 500
    partial: bool = True
    data: dict[MetricKey, dict[str, dict[int, float]]] = field(default_factory=dict)
    failures: deque[Failure] = field(default_factory=deque)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _pages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def put(
        self,
        namespace: str,
        metric_name: str,
        dimensions: dict[str, str],
        statistic: str,
        timestamp: float,
        value: float,
    ) -> None:
        """Make ``statistic`` of the period starting at ``timestamp`` (seconds) be ``value``."""
        key = (namespace, metric_name, tuple(sorted(dimensions.items())))
        self.data.setdefault(key, {}).setdefault(statistic, {})[int(timestamp)] = value

    def fail_next(self, *failures: Failure) -> None:
        self.failures.extend(failures)

    async def get_metric_data(self, region: str, **params: Any) -> dict[str, Any]:
        self.calls.append(("GetMetricData", region, params))
        self._maybe_fail()
        token = params.get("NextToken")
        if token:
            return self._next_page(token)
        start, end = _seconds(params["StartTime"]), _seconds(params["EndTime"])
        if len(params["MetricDataQueries"]) > 500:
            raise CloudWatchError("invalid", "ValidationError", "more than 500 queries")
        results = []
        for query in params["MetricDataQueries"]:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            key = (metric["Namespace"], metric["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", ()))))
            values = self.data.get(key, {}).get(stat["Stat"], {})
            period = int(stat["Period"])
            points = sorted((t, v) for t, v in values.items() if start <= t < end and (t - start) % period == 0)
            if params.get("ScanBy") == "TimestampDescending":
                points.reverse()
            results.append({"Id": query["Id"], "Label": metric["MetricName"], "points": points})
        return self._paginate(results)

    def _paginate(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        pages: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        room = self.page_size
        for result in results:
            points = result["points"]
            while True:
                taken, points = points[:room], points[room:]
                room -= len(taken)
                cut = bool(points)
                current.append(
                    {
                        "Id": result["Id"],
                        "Label": result["Label"],
                        "Timestamps": [datetime.fromtimestamp(t, tz=timezone.utc) for t, _ in taken],
                        "Values": [v for _, v in taken],
                        "StatusCode": "PartialData" if cut and self.partial else "Complete",
                    }
                )
                if room == 0:
                    pages.append({"MetricDataResults": current})
                    current, room = [], self.page_size
                if not cut:
                    break
        if current or not pages:
            pages.append({"MetricDataResults": current})
        for index in range(len(pages) - 1):
            token = f"page-{id(pages)}-{index + 1}"
            pages[index]["NextToken"] = token
            self._pages[token] = pages[index + 1 :]
        return pages[0]

    def _next_page(self, token: str) -> dict[str, Any]:
        rest = self._pages.pop(token, None)
        if rest is None:
            raise CloudWatchError("invalid", "InvalidNextToken", "unknown NextToken")
        return rest[0]

    async def list_metrics(self, region: str, **params: Any) -> dict[str, Any]:
        self.calls.append(("ListMetrics", region, params))
        self._maybe_fail()
        wanted = params.get("Dimensions", ())
        found = []
        for namespace, name, dimensions in self.data:
            if namespace != params.get("Namespace", namespace) or name != params.get("MetricName", name):
                continue
            present = dict(dimensions)
            if all(f["Name"] in present and f.get("Value", present[f["Name"]]) == present[f["Name"]] for f in wanted):
                found.append({"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": n, "Value": v} for n, v in dimensions]})
        offset = int(params.get("NextToken") or 0)
        page = found[offset : offset + self.list_page_size]
        answer: dict[str, Any] = {"Metrics": page}
        if offset + self.list_page_size < len(found):
            answer["NextToken"] = str(offset + self.list_page_size)
        return answer

    async def close(self) -> None:
        pass

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.popleft().error()


class FakeCloudWatchServer:
    """``FakeCloudWatch`` over HTTP on 127.0.0.1 in CloudWatch's JSON 1.0 protocol.

    ``failures`` are answered as HTTP errors before the fake is consulted; ``requests`` keeps
    (operation, headers, body) of every request received. ``hang`` holds every answer back that
    many seconds (or until ``stop``), to stand for a CloudWatch that does not answer.
    """

    TARGET_PREFIX = "GraniteServiceVersion20100801."

    def __init__(self, fake: FakeCloudWatch | None = None, *, hang: float = 0.0) -> None:
        self.fake = fake or FakeCloudWatch()
        self.failures: deque[Failure] = deque()
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.hang = hang
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._released.set()  # requests held by ``hang`` end now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeCloudWatchServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").removeprefix(self.TARGET_PREFIX)
        body = json.loads(await request.read() or b"{}")
        self.requests.append((operation, dict(request.headers), body))
        if self.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.hang)
        if self.failures:
            return _error(self.failures.popleft())
        params = _decode_times(body)
        try:
            if operation == "GetMetricData":
                answer = await self.fake.get_metric_data("", **params)
            elif operation == "ListMetrics":
                answer = await self.fake.list_metrics("", **params)
            else:
                return _error(Failure(400, "InvalidAction", f"{operation} is not faked"))
        except CloudWatchError as exc:
            status = 429 if exc.kind == "throttled" else 403 if exc.kind == "denied" else 500 if exc.kind == "server" else 400
            return _error(Failure(status, exc.code, exc.message))
        return web.Response(body=json.dumps(answer, default=_encode_time), content_type="application/x-amz-json-1.0")


def _error(failure: Failure) -> web.Response:
    sender = "Receiver" if failure.status >= 500 else "Sender"
    return web.Response(
        status=failure.status,
        body=json.dumps({"__type": f"com.amazonaws.cloudwatch#{failure.code}", "message": failure.message}),
        content_type="application/x-amz-json-1.0",
        headers={"x-amzn-query-error": f"{failure.code};{sender}"},
    )


def _seconds(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(math.floor(float(value)))


def _decode_times(body: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromtimestamp(float(value), tz=timezone.utc) if key in ("StartTime", "EndTime") else value
        for key, value in body.items()
    }


def _encode_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")
