"""Prometheus' /api/v1/query and /api/v1/query_range, so Grafana can chart what alertd holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from daemon.api import server
from daemon.api.prom import BadData, error, ok, params
from daemon.config import parse_duration
from daemon.promql.engine import Engine
from daemon.promql.errors import QueryError
from daemon.promql.parser import ParseError
from daemon.promql.printer import format_number
from daemon.promql.value import Sample, Scalar, SeriesPoints, String, Value

MAX_POINTS = 11_000


async def query(request: web.Request) -> web.Response:
    daemon = request.app[server.DAEMON]
    args = dict(await params(request))
    text = _required(args, "query")
    t = _time(args["time"], "time") if args.get("time") else daemon.clock.time()
    try:
        result = Engine(daemon.store).instant(text, t)
    except ParseError as exc:
        raise BadData(str(exc)) from None
    except QueryError as exc:
        return error("execution", str(exc), 422)
    return ok(render(result, t))


async def query_range(request: web.Request) -> web.Response:
    daemon = request.app[server.DAEMON]
    args = dict(await params(request))
    text = _required(args, "query")
    start = _time(_required(args, "start"), "start")
    end = _time(_required(args, "end"), "end")
    step = _step(_required(args, "step"))
    if end < start:
        raise BadData("end timestamp must not be before start time")
    if (end - start) / step > MAX_POINTS:
        raise BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        )
    try:
        result = Engine(daemon.store).range(text, start, end, step)
    except ParseError as exc:
        raise BadData(str(exc)) from None
    except QueryError as exc:
        return error("execution", str(exc), 422)
    return ok({"resultType": "matrix", "result": [_series(s) for s in result]})


def render(value: Value, t: float) -> dict[str, Any]:
    """An evaluation result as the ``data`` of Prometheus' query response."""
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [t, format_number(value.value)]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [t, value.value]}
    if value and isinstance(value[0], SeriesPoints):
        return {"resultType": "matrix", "result": [_series(s) for s in value]}  # type: ignore[arg-type]
    return {"resultType": "vector", "result": [_sample(s, t) for s in value]}  # type: ignore[arg-type]


def _sample(sample: Sample, t: float) -> dict[str, Any]:
    return {"metric": sample.labels.to_dict(), "value": [t, format_number(sample.value)]}


def _series(series: SeriesPoints) -> dict[str, Any]:
    return {
        "metric": series.labels.to_dict(),
        "values": [[t_ms / 1000, format_number(v)] for t_ms, v in series.points],
    }


def _required(args: dict[str, str], name: str) -> str:
    value = args.get(name)
    if not value:
        raise BadData(f'invalid parameter "{name}": missing')
    return value


def _time(text: str, name: str) -> float:
    """A Prometheus API timestamp: Unix seconds (with a fraction) or RFC 3339."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadData(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp') from None


def _step(text: str) -> float:
    try:
        step = float(text)
    except ValueError:
        try:
            step = parse_duration(text)
        except ValueError:
            raise BadData(f'invalid parameter "step": cannot parse "{text}" to a valid duration') from None
    if step <= 0:
        raise BadData("zero or negative query resolution step widths are not accepted. Try a positive integer")
    return step
